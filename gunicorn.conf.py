"""Gunicorn settings, read automatically from the working directory.

The app is not preloaded, so each worker process builds its own engine after
the fork and no database connection is ever shared across processes.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"  # threads keep Server-Sent Events streams from starving the pool
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 60
graceful_timeout = 10
accesslog = "-"
preload_app = False
# gunicorn answers a longer request line (method, path and query) itself, with a 400
# text/html page the app never sees; 8190 is the most gunicorn allows (README "Limits").
limit_request_line = 8190
