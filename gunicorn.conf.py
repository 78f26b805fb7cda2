"""Gunicorn settings, read automatically from the working directory.

The app is not preloaded, so each worker process builds its own engine after
the fork and no database connection is ever shared across processes.

Web tier (issue 14): gevent workers. A thread-per-connection worker (gthread)
hands a thread to each accepted socket, so 20 clients trickling their headers
or 200 open event streams exhaust it; a gevent worker parks each idle or slow
connection as a cheap greenlet. psycopg 3 (>= 3.1.14) and redis-py cooperate
with gevent's patched sockets; SQLite calls are short and never wait on a
greenlet of the same process. ``GUNICORN_WORKER_CLASS=gthread`` restores the
old behaviour. Import no app module here: this file is read before gevent
patches the standard library.
"""

import json
import os
import shutil
from pathlib import Path

from gunicorn import util

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))  # per gevent worker
threads = int(os.environ.get("GUNICORN_THREADS", "8"))  # gthread only
timeout = 60
graceful_timeout = 8  # under make run's 10 s before SIGKILL (app/procfile.py)
accesslog = None  # the app logs one structured line per request (app/api/observe.py)
preload_app = False

# gunicorn answers a longer request line (method, path and query) itself, before the app
# sees the request; 8190 is the most gunicorn allows (README "Limits").
limit_request_line = 8190


def _problem_error(sock, status_int, reason, mesg):
    """gunicorn's own error answers (request line too long, malformed request) as RFC 9457
    problem+json like every answer of the app, instead of gunicorn's text/html page."""
    slug = {400: "malformed-request", 403: "forbidden", 431: "headers-too-large"}.get(status_int, str(status_int))
    body = json.dumps({"type": f"urn:orchestration:problem:{slug}", "title": reason, "status": status_int,
                       "detail": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _problem_error  # the workers call util.write_error for every error they answer themselves


# Observability (issue 16). Each worker process writes its metric samples to
# files in one directory that /metrics reads (prometheus-client's multiprocess
# mode). `make run` shares its directory with the Celery worker and cleans it
# itself; when gunicorn picks the directory, it cleans it at start.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path("var") / "metrics" / "web"))
_LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").lower()


def on_starting(server: object) -> None:
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if _OWN_METRICS_DIR:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    from app import logs

    logs.adopt("gunicorn.error", _LOG_FORMAT)


def post_worker_init(worker: object) -> None:
    from app import heap, logs

    logs.adopt("gunicorn.error", _LOG_FORMAT)
    heap.freeze_loaded_objects()  # the app is loaded: full GC passes skip it (app/heap.py)


def child_exit(server: object, worker: object) -> None:
    """A dead worker's live gauges must not linger in the scrape."""
    from app import metrics

    metrics.process_exited(worker.pid, os.environ.get("PROMETHEUS_MULTIPROC_DIR"))  # type: ignore[attr-defined]
