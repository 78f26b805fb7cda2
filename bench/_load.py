"""A small asyncio HTTP/1.1 keep-alive load generator (wrk is not installed here).

Closed loop (``closed_loop``): N connections, each sends its next request when
the previous answer arrived, for a fixed time. Open loop (``open_loop``):
requests at a fixed rate, whatever the answers do. Both count only 2xx.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

Request = Callable[[int], tuple[str, str, dict[str, Any] | None]]


class Conn:
    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port, self.headers = port, headers

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def send(self, method: str, path: str, body: dict[str, Any] | None) -> int:
        payload = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}",
                "Content-Type: application/json"] + [f"{k}: {v}" for k, v in self.headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line = await self.reader.readline()
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        await self.reader.readexactly(length)
        if close:
            self.writer.close()
            await self.open()
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


async def _closed(port: int, headers: dict[str, str], connections: int, seconds: float,
                  request: Request) -> dict[str, float]:
    conns = [Conn(port, headers) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    counter, ok, errors = [0], [0], [0]
    deadline = time.monotonic() + seconds

    async def loop(conn: Conn) -> None:
        while time.monotonic() < deadline:
            counter[0] += 1
            status = await conn.send(*request(counter[0]))
            if 200 <= status < 300:
                ok[0] += 1
            else:
                errors[0] += 1

    start = time.monotonic()
    await asyncio.gather(*(loop(c) for c in conns))
    elapsed = time.monotonic() - start
    for c in conns:
        c.close()
    return {"ok": ok[0], "errors": errors[0], "seconds": elapsed, "rps": ok[0] / elapsed}


def closed_loop(port: int, headers: dict[str, str], connections: int, seconds: float,
                request: Request) -> dict[str, float]:
    return asyncio.run(_closed(port, headers, connections, seconds, request))


async def _open(port: int, headers: dict[str, str], rate: float, count: int, request: Request) -> int:
    conns: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(16):
        conn = Conn(port, headers)
        await conn.open()
        conns.put_nowait(conn)
    ok = [0]

    async def one(n: int) -> None:
        conn = await conns.get()
        try:
            if 200 <= await conn.send(*request(n)) < 300:
                ok[0] += 1
        finally:
            conns.put_nowait(conn)

    start, pending = time.monotonic(), []
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        pending.append(asyncio.create_task(one(n)))
    await asyncio.gather(*pending)
    while not conns.empty():
        conns.get_nowait().close()
    return ok[0]


def open_loop(port: int, headers: dict[str, str], rate: float, count: int, request: Request) -> int:
    """Send ``count`` requests at ``rate`` per second; returns how many answered 2xx."""
    return asyncio.run(_open(port, headers, rate, count, request))
