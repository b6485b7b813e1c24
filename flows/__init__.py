"""Prefect flows: thin functions that call `tasks/` in pipeline order."""
