"""Counting Redis round trips from outside a service: a TCP proxy per service.

Code from before ``clinicflow_redis_round_trips_total`` cannot say how often it
waits for Redis; a proxy between a service and Redis can. On each connection,
the client's data after an answer (or first on the connection) starts a round
trip: a pipeline's commands sent back to back count once, as the counter counts
them. The one difference: commands a client sends before reading any answer
count once here, where the counter counts each send (a new connection's set-up
sends two ``CLIENT SETINFO`` at once), and a large pipeline that arrives in more
than one read counts twice if Redis answers its first part before the rest is
here. The proxy adds a hop of its own, so the
bench counts through it only in a pass of its own, never while measuring time
or CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

from shared.infra import free_port

CHUNK = 65536


class CountingProxies:
    """One proxy per name in front of the Redis at ``redis_url``, on a thread of its own."""

    def __init__(self, redis_url: str, names: Iterable[str]) -> None:
        parts = urlsplit(redis_url)
        self._parts = parts
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._ports = {name: free_port() for name in names}
        self.round_trips = dict.fromkeys(self._ports, 0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []

    def url(self, name: str) -> str:
        """The Redis URL service ``name`` is given: its proxy, the same database."""
        netloc = f"127.0.0.1:{self._ports[name]}"
        if self._parts.password:
            netloc = f":{self._parts.password}@{netloc}"
        return urlunsplit(self._parts._replace(netloc=netloc))

    def __enter__(self) -> CountingProxies:
        self._thread.start()
        for name, port in self._ports.items():
            started = asyncio.run_coroutine_threadsafe(self._listen(name, port), self._loop)
            self._servers.append(started.result(timeout=10))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _listen(self, name: str, port: int) -> asyncio.Server:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(name, reader, writer)

        return await asyncio.start_server(accept, "127.0.0.1", port)

    async def _relay(
        self, name: str, client: asyncio.StreamReader, to_client: asyncio.StreamWriter
    ) -> None:
        server, to_server = await asyncio.open_connection(*self._target)
        answered = True  # a connection's first write starts a round trip

        async def upstream() -> None:
            nonlocal answered
            while data := await client.read(CHUNK):
                if answered:
                    self.round_trips[name] += 1
                    answered = False
                to_server.write(data)
                await to_server.drain()

        async def downstream() -> None:
            nonlocal answered
            while data := await server.read(CHUNK):
                answered = True
                to_client.write(data)
                await to_client.drain()

        pipes = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        with contextlib.suppress(ConnectionError):
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        for writer in (to_client, to_server):
            writer.close()
