"""Real local servers standing in for the notifier's providers: an SMTP server
(aiosmtpd), a Twilio-compatible SMS API and a webhook receiver (Starlette apps
under uvicorn). Each is an async context manager that listens on a free port of
127.0.0.1 in a thread of its own, records what it received, and can be told to
fail the next requests.

    async with SmtpFake() as smtp:
        smtp.fail_next(451)              # the next message gets "451" after DATA
        ...
        mail = (await smtp.wait_for_mail(1))[0]
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from itertools import count
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.infra import free_port
from tests.support import eventually

HOST = "127.0.0.1"
SMTP_REPLIES = {
    421: "421 4.3.2 Service not available, closing channel",
    450: "450 4.2.0 Mailbox busy",
    451: "451 4.3.0 Temporary local problem, try again later",
    452: "452 4.3.1 Insufficient system storage",
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.3.4 Message too big",
    554: "554 5.7.1 Transaction failed",
}


# --- SMTP --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes  # the DATA as received
    login: str | None  # who authenticated, if anyone

    @property
    def message(self) -> EmailMessage:
        # SMTP's CRLF line ends, as Python holds text in memory
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        return parsed


class SmtpFake:
    """An SMTP server that keeps every message it accepts in ``received``.

    With ``credentials`` it offers AUTH (PLAIN/LOGIN, without TLS) and refuses
    anyone else; ``fail_next`` makes it answer an SMTP code instead of accepting."""

    def __init__(
        self, *, credentials: tuple[str, str] | None = None, answer_after_s: float = 0.0
    ) -> None:
        self.host = HOST
        self.port = 0
        self.received: list[ReceivedMail] = []
        self.refused: list[int] = []  # the codes it answered instead of accepting
        self.sessions = 0  # EHLO greetings: one per connection a client opened
        self.most_at_once = 0  # messages between DATA and the answer at one time, at most
        self.answer_after_s = answer_after_s  # how long it keeps a message before answering
        self._in_data = 0
        self._credentials = credentials
        self._failures: deque[tuple[str, int]] = deque()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def fail_next(self, code: int, *, times: int = 1, at: Literal["rcpt", "data"] = "data") -> None:
        """Answer ``code`` (e.g. 451, 550) to the next ``times`` messages, at RCPT TO
        (a refused recipient) or after DATA (the message as a whole)."""
        with self._lock:
            self._failures.extend([(at, code)] * times)

    async def wait_for_mail(self, count: int = 1, *, timeout: float = 10.0) -> list[ReceivedMail]:
        return await eventually(
            lambda: self.received if len(self.received) >= count else None, timeout=timeout
        )

    async def __aenter__(self) -> Self:
        self.port = free_port()
        await self._listen()
        return self

    async def _listen(self) -> None:
        auth: dict[str, Any] = {}
        if self._credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self, hostname=self.host, port=self.port, **auth)
        await asyncio.to_thread(self._controller.start)

    async def __aexit__(self, *exc: object) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)

    async def restart(self) -> None:
        """Stop listening, dropping every open connection, and listen again on the port."""
        assert self._controller is not None
        await asyncio.to_thread(self._controller.stop)
        await self._listen()

    def _take_failure(self, stage: str) -> int | None:
        with self._lock:
            if self._failures and self._failures[0][0] == stage:
                code = self._failures.popleft()[1]
                self.refused.append(code)
                return code
        return None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self._credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        if not ok:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        return AuthResult(success=True, auth_data=data.login.decode())

    # aiosmtpd handler hooks (called in the server's thread)
    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        with self._lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        code = self._take_failure("rcpt")
        if code is not None:
            return SMTP_REPLIES.get(code, f"{code} Injected failure")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        code = self._take_failure("data")
        if code is not None:
            return SMTP_REPLIES.get(code, f"{code} Injected failure")
        raw = envelope.original_content or b""
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            login=session.auth_data if session.authenticated else None,
        )
        with self._lock:
            self.received.append(mail)
            self._in_data += 1
            self.most_at_once = max(self.most_at_once, self._in_data)
        try:
            if self.answer_after_s:
                await asyncio.sleep(self.answer_after_s)
        finally:
            with self._lock:
                self._in_data -= 1
        return "250 2.0.0 Message accepted"


# --- HTTP servers: a Starlette app under uvicorn in a thread ------------------------


class _ThreadedApp:
    """Runs ``self.app`` under uvicorn on a free port, in a thread with its own loop."""

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def app(self) -> Starlette:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        # bound here, so the port is ours before the server starts (no free-port race)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((self.host, 0))
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, log_config=None, lifespan="off"
        )
        server = self._server = uvicorn.Server(config)
        thread = self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name=f"{type(self).__name__}:{self.port}",
        )
        thread.start()
        await eventually(lambda: server.started or not thread.is_alive(), timeout=10)
        if not server.started:
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
            assert not self._thread.is_alive(), f"{type(self).__name__} did not stop"
        if self._socket is not None:
            self._socket.close()


@dataclass(frozen=True)
class SmsRequest:
    """One POST to the Messages resource, as the fake received it."""

    account_sid: str  # from the path
    auth: tuple[str, str] | None  # Basic auth (user, password), if any
    form: dict[str, str]
    status: int  # what the fake answered
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


@dataclass
class _Failure:
    status: int
    code: int
    retry_after: float | None = None


class SmsApiFake(_ThreadedApp):
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json``, answering like Twilio.

    ``requests`` holds every request (also refused ones), ``messages`` the forms it
    accepted (201, ``status: queued``)."""

    def __init__(
        self, *, account_sid: str = "AC" + "f" * 32, auth_token: str = "fake-twilio-auth-token-0001"
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[SmsRequest] = []
        self._failures: deque[_Failure] = deque()
        self._rejected: dict[str, _Failure] = {}
        self._sids = count(1)

    @property
    def messages(self) -> list[dict[str, str]]:
        return [r.form for r in self.requests if r.status == 201]

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer ``status`` (429, 500, 503...) to the next ``times`` requests."""
        with self._lock:
            self._failures.extend([_Failure(status, code or 20000 + status, retry_after)] * times)

    def reject_number(self, number: str, *, code: int = 21211, status: int = 400) -> None:
        """Refuse every message to ``number`` like Twilio refuses an invalid one."""
        with self._lock:
            self._rejected[number] = _Failure(status, code)

    async def wait_for_requests(self, count: int = 1, *, timeout: float = 10.0) -> list[SmsRequest]:
        return await eventually(
            lambda: self.requests if len(self.requests) >= count else None, timeout=timeout
        )

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{sid}/Messages.json", self._create, methods=["POST"])
            ]
        )

    async def _create(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        auth = _basic_auth(request.headers.get("authorization", ""))
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        with self._lock:
            status, answer, headers = self._answer(sid, auth, form)
            self.requests.append(SmsRequest(sid, auth, form, status, dict(request.headers)))
        return JSONResponse(answer, status_code=status, headers=headers)

    def _answer(
        self, sid: str, auth: tuple[str, str] | None, form: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if auth != (self.account_sid, self.auth_token) or sid != self.account_sid:
            return 401, _twilio_error(20003, "Authenticate", 401), {}
        if self._failures:
            failure = self._failures.popleft()
            retry = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after else {}
            return (
                failure.status,
                _twilio_error(failure.code, "Injected failure", failure.status),
                retry,
            )
        to = form.get("To", "")
        if not to:
            return 400, _twilio_error(21604, "A 'To' phone number is required.", 400), {}
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, _twilio_error(21603, "A 'From' phone number is required.", 400), {}
        if not form.get("Body"):
            return 400, _twilio_error(21602, "Message body is required.", 400), {}
        if to in self._rejected:
            r = self._rejected[to]
            message = f"The 'To' number {to} is not a valid phone number."  # Twilio quotes it
            return r.status, _twilio_error(r.code, message, r.status), {}
        message_sid = f"SM{next(self._sids):032x}"
        return (
            201,
            {
                "sid": message_sid,
                "account_sid": sid,
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "from": form.get("From"),
                "to": to,
                "body": form["Body"],
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "api_version": "2010-04-01",
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
            },
            {},
        )


def _twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return None
    return (user, password) if sep else None


@dataclass(frozen=True)
class ReceivedPost:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered


class WebhookReceiver(_ThreadedApp):
    """Accepts any POST (204) and keeps it in ``posts``; ``url`` is a hook path on it."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[ReceivedPost] = []
        self._statuses: deque[int] = deque()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/clinicflow"

    def fail_next(self, status: int, *, times: int = 1) -> None:
        with self._lock:
            self._statuses.extend([status] * times)

    async def wait_for_posts(self, count: int = 1, *, timeout: float = 10.0) -> list[ReceivedPost]:
        return await eventually(
            lambda: self.posts if len(self.posts) >= count else None, timeout=timeout
        )

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            status = self._statuses.popleft() if self._statuses else 204
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.posts.append(ReceivedPost(request.url.path, headers, body, status))
        return Response(status_code=status)


# --- a server that accepts connections and never answers (timeouts) ----------------


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and then says nothing: every client times out."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()
