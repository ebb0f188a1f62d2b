"""Whole catalogs projected offline: the streaming local engine and the Ray Data engine."""
