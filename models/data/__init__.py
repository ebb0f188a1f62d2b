"""Catalogs: readers for the file formats, and the seeded synthetic catalog of movie themes."""
