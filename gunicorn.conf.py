"""Gunicorn settings, read automatically from the working directory.

The app is not preloaded, so each worker process builds its own engine after
the fork and no database connection is ever shared across processes.
"""

import json
import os

from gunicorn import util

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"  # threads keep Server-Sent Events streams from starving the pool
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 60
graceful_timeout = 10
accesslog = "-"
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
