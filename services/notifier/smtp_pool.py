"""Open SMTP sessions kept for reuse.

Connecting, the greeting, EHLO, STARTTLS and AUTH cost several round trips and a
TLS handshake; a session that just sent a message can send the next one with
three commands. A session is handed to one sender at a time, and at most
``size`` are open. One that sat idle for a few seconds is asked ``NOOP`` first
(a server may have dropped it meanwhile); one idle longer than ``idle_s`` is
closed; one that failed in any way is dropped, never reused; after
``messages_per_session`` messages a session is closed and a fresh one opened
(servers cap messages per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiosmtplib

PROBE_AFTER_S = 5.0


@dataclass
class _Session:
    smtp: aiosmtplib.SMTP
    sent: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class SmtpPool:
    def __init__(
        self,
        open_session: Callable[[], Awaitable[aiosmtplib.SMTP]],
        *,
        size: int,
        idle_s: float,
        messages_per_session: int,
    ) -> None:
        self._open = open_session
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Session] = []
        self._idle_s = idle_s
        self._per_session = messages_per_session
        self._pruning: asyncio.TimerHandle | None = None

    @contextlib.asynccontextmanager
    async def session(self, *, timeout_s: float) -> AsyncIterator[aiosmtplib.SMTP]:
        """A connected session for one message: reused when one is idle, else opened
        (within ``timeout_s``). Raises what aiosmtplib raises; the session is then
        dropped."""
        async with self._slots:
            async with asyncio.timeout(timeout_s):
                session = await self._take()
            try:
                yield session.smtp
            except BaseException:
                session.smtp.close()
                raise
            session.sent += 1
            if session.sent >= self._per_session or not session.smtp.is_connected:
                await _quit(session.smtp)
            else:
                session.idle_since = time.monotonic()
                self._idle.append(session)
                self._prune_later()

    async def aclose(self) -> None:
        if self._pruning is not None:
            self._pruning.cancel()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(s.smtp) for s in idle))

    async def _take(self) -> _Session:
        while self._idle:
            session = self._idle.pop()  # the most recently used: the likeliest alive
            idle_for = time.monotonic() - session.idle_since
            if idle_for > self._idle_s or not session.smtp.is_connected:
                session.smtp.close()
                continue
            if idle_for > PROBE_AFTER_S:
                try:
                    await session.smtp.noop()
                except (aiosmtplib.SMTPException, OSError):
                    session.smtp.close()
                    continue
            return session
        return _Session(await self._open())

    def _prune_later(self) -> None:
        """Close what stays idle past ``idle_s``: nothing is held open for hours."""
        if self._pruning is None:
            loop = asyncio.get_running_loop()
            self._pruning = loop.call_later(self._idle_s, self._prune)

    def _prune(self) -> None:
        self._pruning = None
        now = time.monotonic()
        stale = [s for s in self._idle if now - s.idle_since >= self._idle_s]
        self._idle = [s for s in self._idle if s not in stale]
        for session in stale:
            session.smtp.close()
        if self._idle:
            self._prune_later()


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """Say goodbye if the server still listens; close either way."""
    try:
        async with asyncio.timeout(2):
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        smtp.close()
