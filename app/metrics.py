"""Prometheus metrics: what operators watch without reading the database.

Counters and histograms live in the process that observes them (web worker,
Celery pool process). Under gunicorn and Celery prefork there are several
such processes, so with ``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py``
and ``make run`` set it) each writes its samples to files there and a scrape
of ``/metrics`` sums them all: web and worker share the directory on one
machine. Gauges that describe the database (outbox lag, event table size)
are not per-process: they are read at scrape time through ``StateCollector``,
cached for a few seconds so a busy scraper costs one query now and then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter("orch_http_requests_total", "HTTP requests answered, by route template and status.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("orch_http_request_duration_seconds", "Time to answer an HTTP request.",
                         ["method", "route"], buckets=LATENCY_BUCKETS)
EVENTS_APPENDED = Counter("orch_events_appended_total", "Events committed to the log, by type.", ["type"])
RULE_RUNS = Counter("orch_rule_runs_total", "Automation rule runs recorded, by rule and outcome.",
                    ["rule", "outcome"])
RULE_LATENCY = Histogram("orch_rule_latency_seconds",
                         "From the trigger event's commit to the commit of the rule's run.", ["rule"],
                         buckets=LATENCY_BUCKETS)
RETENTION_RUNS = Counter("orch_retention_runs_total", "Archive and purge runs, by job and outcome.",
                         ["job", "outcome"])
RETENTION_ROWS = Counter("orch_retention_rows_total", "Events archived or purged, by job.", ["job"])
RETENTION_DURATION = Histogram("orch_retention_duration_seconds", "Duration of archive and purge runs.",
                               ["job"], buckets=(0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 7200.0, 14400.0))
WEBHOOK_DELIVERIES = Counter("orch_webhook_deliveries_total", "Webhook deliveries, by outcome.", ["outcome"])


def webhook_delivered(outcome: str) -> None:
    """One webhook delivery attempt ended (``succeeded``, ``failed``, ``refused``...)."""
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


def events_appended(types: Iterable[str]) -> None:
    for event_type in types:
        EVENTS_APPENDED.labels(type=event_type).inc()


def rule_ran(rule: str, outcome: str, latency_seconds: float | None) -> None:
    RULE_RUNS.labels(rule=rule, outcome=outcome).inc()
    if latency_seconds is not None:
        RULE_LATENCY.labels(rule=rule).observe(max(latency_seconds, 0.0))


def retention_ran(job: str, outcome: str, rows: int, seconds: float) -> None:
    """``job`` is ``archive`` or ``purge``; ``outcome`` ``done``, ``busy`` or ``failed``."""
    RETENTION_RUNS.labels(job=job, outcome=outcome).inc()
    RETENTION_ROWS.labels(job=job).inc(rows)
    RETENTION_DURATION.labels(job=job).observe(seconds)


@contextmanager
def retention_run(job: str) -> Iterator[Callable[[bool, int], None]]:
    """Measure one archive or purge run; call the yielded function with (busy, rows) when it ends.

    A run that raises counts as ``failed``. Beat's jobs and the CLI both use it
    (the CLI's samples reach ``/metrics`` when it shares ``PROMETHEUS_MULTIPROC_DIR``).
    """
    started, outcome = time.monotonic(), {"busy": False, "rows": 0, "done": False}

    def finished(busy: bool, rows: int) -> None:
        outcome.update(busy=busy, rows=rows, done=True)

    try:
        yield finished
    finally:
        result = "failed" if not outcome["done"] else "busy" if outcome["busy"] else "done"
        retention_ran(job, result, int(outcome["rows"]), time.monotonic() - started)


def request_observed(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_LATENCY.labels(method=method, route=route).observe(seconds)


class StateCollector(Collector):
    """Gauges read from the database at scrape time, cached for ``ttl`` seconds per process."""

    def __init__(self, sample: Callable[[], dict[str, Any]], ttl: float = 5.0) -> None:
        self._sample = sample
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def _state(self) -> dict[str, Any] | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self._ttl:
                try:
                    self._cached = (now, self._sample())
                except Exception:  # noqa: BLE001 - a scrape must answer even with the database down
                    return None
            return self._cached[1]

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        yield _gauge("orch_database_up", "1 when the database answered the last state query.",
                     0 if state is None else 1)
        if state is None:
            return
        yield _gauge("orch_outbox_pending", "Events waiting for the rules to see them.", state["outbox_pending"])
        yield _gauge("orch_outbox_oldest_pending_age_seconds", "Age of the oldest pending dispatch.",
                     state["outbox_oldest_age"])
        rows = GaugeMetricFamily("orch_events_rows", "Rows of orchestration_events (estimate on PostgreSQL).",
                                 labels=["state"])
        size = GaugeMetricFamily("orch_events_bytes", "Bytes of orchestration_events with its indexes, "
                                 "split by row share.", labels=["state"])
        for name in ("hot", "archived"):
            rows.add_metric([name], state["rows"][name])
            size.add_metric([name], state["bytes"][name])
        yield rows
        yield size


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def scrape(state: StateCollector | None, multiprocess_dir: str | None) -> tuple[bytes, str]:
    """The exposition of every process's samples (multiprocess mode) plus the database gauges.

    ``multiprocess_dir`` is ``Settings.metrics_dir`` (``PROMETHEUS_MULTIPROC_DIR``),
    which prometheus-client also reads itself when the metrics are defined.
    """
    if multiprocess_dir:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if state is not None:
        registry.register(state)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward(Collector):
    """The process's default registry, without registering our per-scrape collector into it."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        return iter(self._source.collect())


def process_exited(pid: int, multiprocess_dir: str | None) -> None:
    """Gunicorn ``child_exit`` / Celery ``worker_process_shutdown``: drop a dead process's live gauges."""
    if multiprocess_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
