"""Objects a server process loads once, kept out of the garbage collector's full passes.

A full (generation 2) collection walks every tracked object the process has:
once the app is loaded (Flask, SQLAlchemy's mappers and compiled statements,
marshmallow schemas, the OpenAPI document) that is most of the heap, and a
pass took 50–70 ms on this machine. It struck one request in about sixty and
was the ~60 ms p99 of reads that take 8–15 ms otherwise (seen at a million
events: each slow request coincided with a gen-2 collection; with the
startup objects frozen, none was slow). ``gc.freeze()`` moves what exists now
to a permanent generation that collections skip; what requests allocate is
collected as before. The price: a frozen object in a reference cycle that is
dropped later is never freed, which is why this runs once the app is loaded
(objects that live as long as the process) and not in the app factory, which
tests call thousands of times.
"""

from __future__ import annotations

import gc


def freeze_loaded_objects() -> None:
    """Collect what loading left behind, then exempt the rest from full collections (server processes
    call this once the app is loaded: gunicorn's ``post_worker_init``, Celery's ``worker_process_init``)."""
    gc.collect()
    gc.freeze()
