"""Many Server-Sent Events subscribers in one process, on raw sockets and one selector.

Run as ``python -m tests.e2e.sse_swarm PORT PLAN.json OUT.json``: PLAN holds one
``{"token", "query"}`` per subscriber. It prints ``ready`` once every stream
has answered 200, then reads until stdin gives a line of sentinel event ids and
every subscriber has received one of them (or 30 s pass), then writes the
event ids each subscriber received, in order. A process of its own, so its parsing does not
share a GIL with the client whose latency the load test measures.
"""

from __future__ import annotations

import json
import re
import selectors
import socket
import sys
import threading
import time

EVENT_ID = re.compile(rb"(?m)^id: (\d+)$")


class Subscriber:
    def __init__(self, port: int, token: str, query: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        request = (f"GET /api/orchestration/events/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n")
        self.sock.sendall(request.encode())
        self.sock.setblocking(False)
        self.buffer = b""
        self.status: int | None = None
        self.ids: list[int] = []

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if self.status is None and b"\r\n" in self.buffer:
            self.status = int(self.buffer.split(b" ", 2)[1])
        *messages, self.buffer = self.buffer.split(b"\n\n")
        for message in messages:
            self.ids.extend(int(m) for m in EVENT_ID.findall(message))


def main(port: int, plan_path: str, out_path: str) -> None:
    with open(plan_path) as source:
        plan = json.load(source)
    selector = selectors.DefaultSelector()
    subscribers = [Subscriber(port, p["token"], p["query"]) for p in plan]
    for sub in subscribers:
        selector.register(sub.sock, selectors.EVENT_READ, sub)
    sentinels: set[int] = set()
    given = threading.Event()

    def read_sentinels() -> None:
        sentinels.update(int(word) for word in sys.stdin.readline().split())
        given.set()

    threading.Thread(target=read_sentinels, daemon=True).start()
    announced, deadline = False, None
    while deadline is None or time.monotonic() < deadline:
        if given.is_set():
            deadline = deadline or time.monotonic() + 30
            if all(sentinels & set(s.ids) for s in subscribers):
                break
        for key, _ in selector.select(timeout=0.2):
            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if data:
                key.data.feed(data)
        if not announced and all(s.status is not None for s in subscribers):
            statuses = sorted({s.status for s in subscribers})
            print("ready" if statuses == [200] else f"statuses {statuses}", flush=True)
            announced = True
    with open(out_path, "w") as out:
        json.dump([s.ids for s in subscribers], out)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
