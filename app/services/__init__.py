"""Use cases: each function owns one unit of work."""
