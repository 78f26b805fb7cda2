"""Real processes in tests: free ports, bounded waits, and process trees that never outlive a test.

Shared by the automation tests' Celery workers and the end-to-end ``make run``
tests: each starts its processes in a session of their own, and stops them
with ``end_tree`` or the pieces it is made of.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll with short sleeps until ``check`` is truthy; fail after a bounded time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (Linux /proc), whatever process group or session it moved to."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def alive(pids: list[int]) -> list[int]:
    """The pids still running (zombies count as gone)."""
    running = []
    for pid in pids:
        with suppress(OSError, IndexError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                running.append(pid)
    return running


def end_tree(process: subprocess.Popen[Any], sig: int, grace: float) -> None:
    """``sig`` to the process's group, ``grace`` seconds for the whole tree to go, SIGKILL for what is
    left (children that moved to sessions of their own included), then reap the process."""
    tree = [process.pid, *descendants(process.pid)]
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    deadline = time.monotonic() + grace
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive(tree):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(10)
