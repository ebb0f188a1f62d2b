"""The `topicproj` command line: the whole application (train, project, serve, operate).

The entry point is `topicproj.service.cli.main.main`; this package imports none of its modules,
so that they can import each other without an import circle through it.
"""
