"""Learning topics: the options (one typed definition) and the torch training loop."""
