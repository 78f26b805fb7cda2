"""Logs and metrics of the worker and beat processes.

Celery's own logging setup is replaced by ours (``setup_logging``), so its
lines share the format and redaction of the web's. Each job binds
``task_id`` and the job name for every line it logs; the rules engine adds
``event_id``, ``rule`` and ``outcome`` to its "rule run" lines.

Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` shared with the web processes (as
``make run`` does), the web's ``/metrics`` shows the worker's samples too; a
worker on another machine serves its own with ``ORCH_WORKER_METRICS_PORT``.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery.signals import setup_logging, task_postrun, task_prerun, worker_process_shutdown, worker_ready

from app import logs, metrics
from workers.celery_app import settings

if settings.metrics_dir:  # prometheus-client writes its per-process files there from the first sample on
    os.makedirs(settings.metrics_dir, exist_ok=True)


@setup_logging.connect
def _configure_logging(loglevel: Any = None, **_: Any) -> None:
    """``--loglevel`` wins over ``LOG_LEVEL``; Celery passes it as a number."""
    logs.configure(settings.log_format, loglevel or settings.log_level)


@task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


@task_postrun.connect
def _unbind_task(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


@worker_process_shutdown.connect
def _forget_process(pid: int | None = None, **_: Any) -> None:
    metrics.process_exited(pid or os.getpid(), settings.metrics_dir)


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    """A worker on a machine without a web process exports its own samples (all its pool processes')."""
    if settings.worker_metrics_port:
        from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

        registry = REGISTRY
        if settings.metrics_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_addr, registry=registry)
