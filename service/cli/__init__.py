"""The `topicproj` command line: the whole application (train, project, serve, operate)."""

from .main import main

__all__ = ["main"]
