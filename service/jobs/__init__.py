"""Training jobs run by a server: a queue, a child process per job, and uploaded catalogs."""
