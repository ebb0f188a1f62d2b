"""Model versions on disk: the registry with its atomic active pointer."""
