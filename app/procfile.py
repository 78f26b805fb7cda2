"""``make run``'s process manager: honcho, with a kill wait the processes can shut down within.

honcho sends SIGTERM to each Procfile process's group on Ctrl+C and SIGKILLs
whatever still runs after a fixed 5 s. gunicorn's graceful stop
(``graceful_timeout``) and a Celery worker's warm shutdown (it finishes the
job in flight) can take longer than that, so here honcho waits ``KILL_WAIT``
seconds instead: everything stops cleanly, within 10 s, nothing SIGKILLed.
"""

from __future__ import annotations

import sys

import honcho.manager
from honcho.command import main

KILL_WAIT = 10  # the promise: everything stopped within 10 s of Ctrl+C; past it, SIGKILL


def run(argv: list[str] | None = None) -> None:
    honcho.manager.KILL_WAIT = KILL_WAIT
    main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
