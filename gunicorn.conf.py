"""Gunicorn settings, read automatically from the working directory.

The app is not preloaded, so each worker process builds its own engine after
the fork and no database connection is ever shared across processes.

Web tier (issue 14): gevent workers. A thread-per-connection worker (gthread)
hands a thread to each accepted socket, so 20 clients trickling their headers
or 200 open event streams exhaust it; a gevent worker parks each idle or slow
connection as a cheap greenlet. psycopg 3 (>= 3.1.14) and redis-py cooperate
with gevent's patched sockets; SQLite calls are short and never wait on a
greenlet of the same process. ``GUNICORN_WORKER_CLASS=gthread`` restores the
old behaviour. Keep imports here stdlib-only: this file is read before gevent
patches the standard library.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))  # per gevent worker
threads = int(os.environ.get("GUNICORN_THREADS", "8"))  # gthread only
timeout = 60
graceful_timeout = 10
accesslog = "-"
preload_app = False
