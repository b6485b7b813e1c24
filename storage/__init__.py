"""Artifact schemas and Parquet I/O: the only place that knows how stages' records are stored."""
