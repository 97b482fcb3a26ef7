"""An SMTP server in a process of its own for the dispatcher bench: it accepts every
message and appends a line per event to ``--log``: ``mail <unix time> <Message-ID>``
for each message accepted, ``session <unix time>`` for each EHLO (a connection).

    python -m bench._smtp_sink --port 2525 --log /tmp/sink.log
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, TextIO

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Sink:
    def __init__(self, log: TextIO) -> None:
        self._log = log
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        with self._lock:
            self._log.write(line + "\n")
            self._log.flush()

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        session.host_name = hostname
        self._write(f"session {time.time():.6f}")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        headers = BytesHeaderParser().parsebytes(envelope.original_content or b"")
        self._write(f"mail {time.time():.6f} {headers.get('Message-ID', '-')}")
        return "250 2.0.0 Message accepted"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with args.log.open("a", encoding="utf-8") as log:
        controller = Controller(Sink(log), hostname="127.0.0.1", port=args.port)
        controller.start()
        try:
            stop.wait()
        finally:
            controller.stop()


if __name__ == "__main__":
    main()
