"""SmartTrace: multi-camera person search.

The pipeline lives in `tasks/` (algorithms), `flows/` (Prefect orchestration), `storage/`
(artifact schemas and I/O) and `dashboards/` (Streamlit). This package holds what they share:
configuration, the model/asset registry, errors and the command line.
"""

__version__ = "0.1.0"
