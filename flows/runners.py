"""Task runner from config, so threads / processes / Dask is a setting, not a code change."""

from __future__ import annotations

from smarttrace.config import FlowConfig


def build_task_runner(config: FlowConfig):  # noqa: ANN201 - a Prefect TaskRunner
    """The Prefect task runner named in config (`dask` needs the `prefect-dask` package)."""
    if config.task_runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=config.max_workers)
    if config.task_runner == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=config.max_workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise RuntimeError("flow.task_runner 'dask' needs: pip install prefect-dask") from exc
    if config.dask_address:
        return DaskTaskRunner(address=config.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": config.max_workers, "threads_per_worker": 1})
