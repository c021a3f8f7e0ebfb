"""Core of the fake provider: HTTP server, request recording, scripting, faults.

Wire formats live in sibling modules (``_openai.py``, ...) that register routes
with :func:`route`. A route handler receives a :class:`Call` and returns a
:class:`Response` (a full body, or a sequence of pre-framed SSE events).
"""

from __future__ import annotations

import gzip
import json
import re
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, final
from urllib.parse import parse_qsl, urlsplit

from ._faults import Fault
from ._ndims import ndims_for

__all__ = [
    "OPENAI_DIALECT",
    "ApiError",
    "Call",
    "Dialect",
    "FakeProvider",
    "RecordedRequest",
    "Reply",
    "Response",
    "ToolCall",
    "owns",
    "result_text",
    "route",
]

JSONDict = dict[str, Any]


# --------------------------------------------------------------------------- #
# Public value types
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class RecordedRequest:
    """A request as received by the fake server.

    ``headers`` has lower-case keys; ``json`` is the parsed JSON body (or
    ``None``); ``form``/``files`` hold multipart/form-data fields and files
    (``name -> (filename, bytes)``); ``query`` holds the URL query parameters.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    request_id: str = ""

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class ToolCall:
    """A tool call in a scripted reply: ``arguments`` is JSON text."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A scripted reply for :meth:`FakeProvider.script`.

    ``text`` and ``tool_calls`` replies are rendered in the wire format of the
    endpoint that consumes them (streamed or not); ``json`` replies are sent
    verbatim by any endpoint.
    """

    kind: Literal["text", "tool_calls", "json"]
    content: str = ""
    calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    status: int = 200
    body: object = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, text: str, *, finish_reason: str = "stop") -> Reply:
        """An assistant text reply."""
        return cls(kind="text", content=text, finish_reason=finish_reason)

    @classmethod
    def tool_calls(
        cls,
        calls: Iterable[tuple[str, Mapping[str, object] | str] | tuple[str, Mapping[str, object] | str, str]],
    ) -> Reply:
        """A reply that calls tools: ``[(name, args)]`` or ``[(name, args, id)]``.

        ``args`` is a mapping (serialised to JSON) or a raw JSON string (sent
        as-is, so malformed arguments can be tested). Ids default to
        ``call_0``, ``call_1``...
        """
        out: list[ToolCall] = []
        for item in calls:
            name, args = item[0], item[1]
            call_id = item[2] if len(item) > 2 else None
            text = args if isinstance(args, str) else json.dumps(dict(args))
            out.append(ToolCall(name=name, arguments=text, id=call_id))
        return cls(kind="tool_calls", calls=tuple(out), finish_reason="tool_calls")

    @classmethod
    def json(
        cls,
        status: int,
        body: object,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A raw reply for any endpoint: ``body`` is JSON-serialised unless it
        is ``bytes``/``str``."""
        return cls(
            kind="json",
            status=status,
            body=body,
            headers=tuple((headers or {}).items()),
        )


class ApiError(Exception):
    """Raised by route handlers to produce a provider-shaped error reply."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param


@dataclass
class Response:
    """What a route handler returns.

    Either a complete ``body`` or, for streams, ``events``: already framed SSE
    events (``b"data: ...\\n\\n"``) sent with chunked transfer encoding.
    ``sse_error`` frames an error object as an event for this stream.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    events: Sequence[bytes] | None = None
    sse_error: Callable[[Mapping[str, object]], bytes] | None = None

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Response:
        """A JSON response."""
        return cls(status=status, body=dumps(obj))


@dataclass(frozen=True)
class Dialect:
    """Provider conventions shared by a family of routes (auth, error shape)."""

    name: str
    extract_key: Callable[[RecordedRequest], str | None]
    error_body: Callable[[int, str, str, str | None, str | None], JSONDict]
    status_error: Callable[[int], JSONDict]
    sse_error: Callable[[Mapping[str, object]], bytes]
    # The provider's own refusal of a model it does not serve (status, message, code), rendered
    # by `error_body`: for `FakeProvider(models=[...])`.
    unknown_model: Callable[[str, RecordedRequest], ApiError]


@dataclass(frozen=True)
class Call:
    """Everything a route handler needs to answer one request."""

    request: RecordedRequest
    match: re.Match[str]
    reply: Reply | None
    seq: int
    provider: FakeProvider

    @property
    def request_id(self) -> str:
        """The ``x-request-id`` of this request (``req_<seq>``)."""
        return self.request.request_id

    def body_object(self) -> JSONDict:
        """The JSON body, which must be an object (else a 400 ``ApiError``)."""
        data = self.request.json
        if not isinstance(data, dict):
            raise ApiError(400, "Request body must be a JSON object.")
        return data


Handler = Callable[[Call], Response]


def dumps(obj: object) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def result_text(value: object) -> str:
    """A structured tool result as the fake's ``tool result: …`` echo reads it: text as it is, an
    object holding one text (``{"result": "3"}``) as that text, anything else as compact JSON."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(only := next(iter(value.values())), str):
        return only
    return value if isinstance(value, str) else json.dumps(value)


# --------------------------------------------------------------------------- #
# OpenAI dialect (the default one)
# --------------------------------------------------------------------------- #


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _bearer_key(req: RecordedRequest) -> str | None:
    auth = req.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = req.headers.get("api-key", "").strip()  # Azure OpenAI style
    return key or None


def _openai_error_body(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


_STATUS_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: (
        "You are not allowed to access this resource.",
        "invalid_request_error",
        "permission_denied",
    ),
    404: (
        "The requested resource does not exist.",
        "invalid_request_error",
        "not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    409: ("Conflict.", "invalid_request_error", "conflict"),
    422: ("Unprocessable entity.", "invalid_request_error", None),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    503: (
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
    ),
    529: ("Overloaded.", "overloaded_error", "overloaded"),
}


def _openai_status_error(status: int) -> JSONDict:
    if status in _STATUS_DEFAULTS:
        message, type_, code = _STATUS_DEFAULTS[status]
    elif status >= 500:
        message, type_, code = (
            "The server had an error while processing your request.",
            "server_error",
            None,
        )
    else:
        message, type_, code = ("Request failed.", "invalid_request_error", None)
    return _openai_error_body(status, message, type_, code, None)


def _openai_sse_error(error: Mapping[str, object]) -> bytes:
    return b"data: " + dumps({"error": dict(error)}) + b"\n\n"


def _openai_unknown_model(model: str, req: RecordedRequest) -> ApiError:
    return ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                    code="model_not_found")


OPENAI_DIALECT = Dialect(
    name="openai",
    extract_key=_bearer_key,
    error_body=_openai_error_body,
    status_error=_openai_status_error,
    sse_error=_openai_sse_error,
    unknown_model=_openai_unknown_model,
)


# --------------------------------------------------------------------------- #
# Route registry
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    dialect: Dialect
    conversational: bool
    expects_json: bool


_ROUTES: list[_Route] = []


def route(
    method: str,
    pattern: str,
    *,
    dialect: Dialect = OPENAI_DIALECT,
    conversational: bool = False,
    expects_json: bool = True,
) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` and a path regex (full match).

    ``conversational`` routes consume scripted text/tool-call replies;
    ``expects_json`` routes answer 400 to a malformed JSON body.
    """

    def deco(fn: Handler) -> Handler:
        _ROUTES.append(
            _Route(
                method.upper(),
                re.compile(pattern),
                fn,
                dialect,
                conversational,
                expects_json,
            )
        )
        return fn

    return deco


# How a request names its model: a URL part (Azure's deployment, Gemini's `models/{model}`,
# OpenAI's `GET /v1/models/{model}`), else the JSON body's or the multipart form's "model".
_URL_MODEL_GROUPS = ("deployment", "model")


def _requested_model(req: RecordedRequest, match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    for name in _URL_MODEL_GROUPS:
        if groups.get(name):
            return re.sub(r"^(?:models|tunedModels)/", "", groups[name])
    model = req.json.get("model") if isinstance(req.json, dict) else req.form.get("model")
    return model if isinstance(model, str) and model else None


# Path prefixes a provider owns (regexes matched at the start), so that a path the fake does not
# serve is refused in that provider's shape, as its SDK expects; the rest are OpenAI's.
_PREFIXES: list[tuple[re.Pattern[str], Dialect]] = []


def owns(prefix: str, dialect: Dialect) -> None:
    """Answer unmatched paths starting with ``prefix`` (a regex) in ``dialect``'s shape."""
    _PREFIXES.append((re.compile(prefix), dialect))


def _prefix_dialect(path: str) -> Dialect:
    return next((d for p, d in _PREFIXES if p.match(path)), OPENAI_DIALECT)


def _find_route(method: str, path: str) -> tuple[_Route, re.Match[str]] | None:
    for r in _ROUTES:
        if r.method == method:
            m = r.pattern.fullmatch(path)
            if m is not None:
                return r, m
    return None


# --------------------------------------------------------------------------- #
# Multipart parsing
# --------------------------------------------------------------------------- #


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Split a multipart/form-data body into text fields and files."""
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if m is None:
        return form, files
    delim = b"--" + m.group(1).encode("latin-1")
    parser = BytesHeaderParser()
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        msg = parser.parsebytes(head + b"\r\n\r\n")
        name = msg.get_param("name", header="content-disposition")
        filename = msg.get_filename()
        if not isinstance(name, str):
            continue
        if filename is not None:
            files[name] = (filename, content)
        else:
            form[name] = content.decode("utf-8", "replace")
    return form, files


# --------------------------------------------------------------------------- #
# HTTP server
# --------------------------------------------------------------------------- #

_EXTRA_PHRASES = {529: "Site Overloaded", 520: "Unknown Error"}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _EXTRA_PHRASES.get(status, "Status")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeProvider.stop() closes connections and joins
    request_queue_size = 128
    timeout = 0.05  # bound for handle_request() should the accept vanish

    def __init__(self, addr: tuple[str, int], provider: FakeProvider) -> None:
        self.provider = provider
        super().__init__(addr, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.provider.tls is not None:  # the handshake runs in the connection's own thread
            sock = self.provider.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ValueError):
                return  # a client that does not trust us: its error is the point of the test
        super().finish_request(request, client_address)

    def serve_until(self, stop: threading.Event, wake: socket.socket) -> None:
        """Accept connections until ``stop`` is set; ``wake`` becoming readable
        interrupts the wait immediately (no polling interval on shutdown)."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.socket, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while not stop.is_set():
                ready = sel.select()
                if stop.is_set():
                    break
                if any(key.fileobj is self.socket for key, _ in ready):
                    self.handle_request()  # readable, so this does not block

    def handle_error(self, request: object, client_address: object) -> None:
        # Broken connections are expected (faults, clients timing out).
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- connection lifecycle ------------------------------------------------

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.provider._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.provider._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- reading ---------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    return None
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(n)

    # -- writing ---------------------------------------------------------------

    def _head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        request_id: str,
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {_phrase(status)}"]
        lines.extend(f"{k}: {v}" for k, v in headers)
        lines.append(f"x-request-id: {request_id}")
        lines.append("Date: " + self.date_time_string())
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_full(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]],
        request_id: str,
        *,
        send_bytes: int | None = None,
    ) -> None:
        if (self.server.provider.compress and send_bytes is None and body
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, mtime=0)
            headers = [*headers, ("Content-Encoding", "gzip")]
        all_headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
        ]
        all_headers.extend(headers)
        payload = body if send_bytes is None else body[:send_bytes]
        self.wfile.write(self._head(status, all_headers, request_id) + payload)

    def _send_stream(
        self,
        resp: Response,
        request_id: str,
        events: Sequence[bytes],
        *,
        terminate: bool = True,
    ) -> None:
        headers = [
            ("Content-Type", resp.content_type),
            ("Transfer-Encoding", "chunked"),
            ("Cache-Control", "no-cache"),
        ]
        headers.extend(resp.headers)
        self.wfile.write(self._head(resp.status, headers, request_id))
        for ev in events:
            if ev:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
        if terminate:
            self.wfile.write(b"0\r\n\r\n")

    def _send_error(self, dialect: Dialect, err: ApiError, request_id: str) -> None:
        body = dumps(dialect.error_body(err.status, err.message, err.type, err.code, err.param))
        self._send_full(err.status, body, "application/json", (), request_id)

    # -- dispatch --------------------------------------------------------------

    def _dispatch(self) -> None:
        provider = self.server.provider
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:
            self.close_connection = True
            return
        url = urlsplit(self.path)
        path = url.path
        headers: dict[str, str] = {}
        for k, v in self.headers.items():
            lk = k.lower()
            headers[lk] = f"{headers[lk]}, {v}" if lk in headers else v
        parsed: Any = None
        json_error = False
        ctype = headers.get("content-type", "")
        form: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        if body and "multipart/form-data" in ctype:
            form, files = parse_multipart(ctype, body)
        elif body:
            try:
                parsed = json.loads(body)
            except ValueError:
                json_error = True
        seq, request_id = provider._next_request_id()
        req = RecordedRequest(
            method=self.command,
            path=path,
            headers=headers,
            body=body,
            json=parsed,
            form=form,
            files=files,
            query=dict(parse_qsl(url.query)),
            request_id=request_id,
        )
        provider._record(req)

        found = _find_route(self.command, path)
        dialect = found[0].dialect if found else _prefix_dialect(path)
        fault = provider._take_fault(path)
        stop = provider._stop_event

        if fault is not None:
            if fault.kind == "drop":
                self._kill()
                return
            if fault.kind == "hang":
                stop.wait()
                self._kill()
                return
            if fault.kind == "slow":
                if stop.wait(fault.seconds):
                    self._kill()
                    return
                fault = None
            elif fault.kind in ("status", "raw"):
                self._latency()
                self._send_fault_reply(fault, dialect, request_id)
                return

        self._latency()
        if found is None:
            self._send_error(
                dialect,
                ApiError(
                    404,
                    f"Invalid URL ({self.command} {path})",
                    code="not_found",
                ),
                request_id,
            )
            return
        rt, match = found
        try:
            resp = self._run_route(rt, match, req, seq, json_error)
        except ApiError as err:
            resp = Response(
                status=err.status,
                body=dumps(rt.dialect.error_body(err.status, err.message, err.type, err.code, err.param)),
            )
        self._deliver(resp, fault, dialect, request_id)

    def _run_route(
        self,
        rt: _Route,
        match: re.Match[str],
        req: RecordedRequest,
        seq: int,
        json_error: bool,
    ) -> Response:
        provider = self.server.provider
        key = rt.dialect.extract_key(req)
        if not key or (provider.require_key is not None and key != provider.require_key):
            shown = (key[:3] + "***" + key[-2:]) if key and len(key) > 6 else (key or "")
            msg = (
                f"Incorrect API key provided: {shown}."
                if key
                else "You didn't provide an API key. You need to provide your API key "
                "in an Authorization header using Bearer auth."
            )
            raise ApiError(401, msg, "invalid_request_error", "invalid_api_key")
        if rt.expects_json and json_error:
            raise ApiError(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
            )
        model = _requested_model(req, match)
        if provider.models is not None and model is not None and model not in provider.models:
            raise rt.dialect.unknown_model(model, req)  # before a scripted reply is used up
        reply = provider._take_reply(req.path, rt.conversational)
        if reply is not None and reply.kind == "json":
            if isinstance(reply.body, bytes):
                raw = reply.body
            elif isinstance(reply.body, str):
                raw = reply.body.encode("utf-8")
            else:
                raw = dumps(reply.body)
            return Response(status=reply.status, body=raw, headers=list(reply.headers))
        return rt.handler(Call(request=req, match=match, reply=reply, seq=seq, provider=provider))

    def _deliver(
        self,
        resp: Response,
        fault: Fault | None,
        dialect: Dialect,
        request_id: str,
    ) -> None:
        kind = fault.kind if fault is not None else None
        events = resp.events
        if events is None:
            if kind in ("truncate", "stream_cut"):
                assert fault is not None
                n = fault.n_bytes if fault.n_bytes is not None else len(resp.body) // 2
                self.close_connection = True
                self._send_full(
                    resp.status,
                    resp.body,
                    resp.content_type,
                    resp.headers,
                    request_id,
                    send_bytes=max(0, min(n, len(resp.body) - 1 if resp.body else 0)),
                )
                return
            if kind == "sse_error":
                assert fault is not None
                err = dict(fault.error)
                body = dialect.error_body(500, str(err.get("message", "")), str(err.get("type", "server_error")),
                                          _opt_str(err.get("code")), _opt_str(err.get("param")))
                self._send_full(500, dumps(body), "application/json", (), request_id)
                return
            self._send_full(resp.status, resp.body, resp.content_type, resp.headers, request_id)
            return
        if kind == "stream_cut":
            assert fault is not None
            self.close_connection = True
            self._send_stream(resp, request_id, events[: fault.after_events], terminate=False)
            return
        if kind == "sse_error":
            assert fault is not None
            self.close_connection = True
            framer = resp.sse_error or dialect.sse_error
            cut = [*events[: fault.after_events], framer(fault.error)]
            self._send_stream(resp, request_id, cut, terminate=True)
            return
        if kind == "truncate":
            assert fault is not None
            blob = b"".join(events)
            n = fault.n_bytes if fault.n_bytes is not None else len(blob) // 2
            self.close_connection = True
            self._send_stream(resp, request_id, [blob[:n]], terminate=False)
            return
        self._send_stream(resp, request_id, events)

    def _send_fault_reply(self, fault: Fault, dialect: Dialect, request_id: str) -> None:
        if fault.kind == "raw":
            body = fault.body if isinstance(fault.body, bytes) else b""
            self._send_full(fault.status_code, body, fault.content_type, fault.headers, request_id)
            return
        if fault.body is None:
            body = dumps(dialect.status_error(fault.status_code))
        elif isinstance(fault.body, bytes):
            body = fault.body
        elif isinstance(fault.body, str):
            body = fault.body.encode("utf-8")
        else:
            body = dumps(dict(fault.body))
        self._send_full(fault.status_code, body, fault.content_type, fault.headers, request_id)

    def _latency(self) -> None:
        delay = self.server.provider.latency
        if delay > 0:
            self.server.provider._stop_event.wait(delay)

    def _kill(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# --------------------------------------------------------------------------- #
# FakeProvider
# --------------------------------------------------------------------------- #


@dataclass
class _FaultEntry:
    fault: Fault
    remaining: int
    path: str | None


@final
class FakeProvider:
    """An in-process HTTP/1.1 server speaking LLM provider wire formats.

    Use as a context manager (or call :meth:`start`/:meth:`stop`)::

        with FakeProvider() as fake:
            client = OpenAI(base_url=fake.base_url, api_key=fake.api_key)

    By default chat replies echo the last user message; queue replies with
    :meth:`script` and failures with :meth:`inject`. Every request is recorded
    in :attr:`requests`.

    Embeddings have the size of the model's real vectors where the fake knows
    the model (``text-embedding-3-large``: 3072, ``embed-english-v3.0``: 1024,
    ``text-embedding-004``: 768 ...), which is also what a rig_sync client's
    ``embedding_model(m).ndims`` says before any request; other models get their
    wire format's usual size, and a request's own size field (``dimensions``)
    wins. Ask the fake with :meth:`ndims`::

        fake.ndims("text-embedding-3-small")          # 1536
        fake.ndims("embed-english-v3.0", "cohere")    # 1024

    By default every model name is accepted. ``models=[...]`` makes the fake
    refuse any other, as the real provider refuses an unknown model, so a test
    catches a typo: OpenAI answers 404 ``{"error": {"code": "model_not_found",
    ...}}``, Azure 404 ``DeploymentNotFound``, Anthropic 404 ``not_found_error``,
    Gemini 404 ``NOT_FOUND``, Cohere and Ollama 404 with their ``message`` /
    ``error`` text, Voyage 400 ``detail``; a rig_sync client raises
    ``rig_sync.errors.NotFoundError`` (``BadRequestError`` for Voyage)::

        with FakeProvider(models=["gpt-4o-mini", "text-embedding-3-small"]) as fake:
            client = openai.Client(fake.api_key, base_url=fake.base_url)
            client.completion_model("gpt-4o-mnii").completion_request("hi").send()
            # NotFoundError: ... The model `gpt-4o-mnii` does not exist ...
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        *,
        require_key: str | None = None,
        record: bool = True,
        tls: ssl.SSLContext | None = None,
        compress: bool = False,
        models: Iterable[str] | None = None,
    ) -> None:
        """``latency`` adds a server-side delay (seconds) to every reply;
        ``require_key`` makes the server accept only that API key (by default
        any non-empty key is accepted); ``record=False`` keeps no copy of the
        requests (for long soak and load runs: counters still count); ``tls``
        (a server-side ``ssl.SSLContext``) serves HTTPS instead of HTTP;
        ``compress`` gzips whole (not streamed) answers for clients that accept
        gzip, as real providers do; ``models`` lists the only model names
        served (the rest are refused in each provider's own shape), ``None``
        (the default) serves any name."""
        names = None if models is None else (models,) if isinstance(models, str) else tuple(models)
        if names is not None and not all(isinstance(m, str) and m for m in names):
            raise TypeError(f"models must be model names, e.g. models=['gpt-4o-mini'], not {models!r}")
        self.models: frozenset[str] | None = None if names is None else frozenset(names)
        self.record = record
        self.compress = compress
        self.tls = tls
        self.host = host
        self.port = port
        self.latency = float(latency)
        self.require_key = require_key
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._scripts: list[tuple[Reply, str | None]] = []
        self._faults: list[_FaultEntry] = []
        self._requests: list[RecordedRequest] = []
        self._request_counter = 0
        self._connection_count = 0
        self._open: dict[socket.socket, threading.Thread] = {}

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind and start serving in a daemon thread (no-op when running)."""
        with self._lock:
            if self._server is not None:
                return self
            self._stop_event.clear()
            server = _Server((self.host, self.port), self)
            wake_r, wake_w = socket.socketpair()
            thread = threading.Thread(
                target=server.serve_until,
                args=(self._stop_event, wake_r),
                name=f"FakeProvider:{server.server_address[1]}",
                daemon=True,
            )
            self._server, self._thread, self._wake = server, thread, (wake_r, wake_w)
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake hung/slow requests, close open keep-alive
        connections and join the server threads."""
        with self._lock:
            server, thread = self._server, self._thread
            if server is None:
                return
            wake = self._wake
            self._server, self._thread, self._wake = None, None, None
            self._stop_event.set()
        if wake is not None:
            try:
                wake[1].send(b"x")
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()
        if wake is not None:
            wake[0].close()
            wake[1].close()
        with self._lock:
            open_conns = list(self._open.items())
        for sock, _ in open_conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for _, t in open_conns:
            if t is not threading.current_thread():
                t.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is currently serving."""
        return self._server is not None

    # -- addresses ----------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; raises ``RuntimeError`` if not started."""
        server = self._server
        if server is None:
            raise RuntimeError("FakeProvider is not running; call start() or use 'with'")
        host, port = server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT`` (``https://`` when serving TLS)."""
        host, port = self.address
        return f"{'https' if self.tls is not None else 'http'}://{host}:{port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, ``<url>/v1``."""
        return self.url + "/v1"

    @property
    def api_key(self) -> str:
        """An API key the server accepts."""
        return self.require_key if self.require_key is not None else "fake-key"

    def ndims(self, model: str, wire: str = "openai") -> int:
        """The length of the vectors the fake returns for ``model`` when the
        request asks no size. ``wire`` is the format asked in: ``"openai"``
        (also Azure, Voyage, Mistral and the other OpenAI-compatible ones),
        ``"cohere"``, ``"gemini"`` or ``"ollama"``; it matters only for
        models the fake does not know."""
        return ndims_for(model, wire)

    # -- scripting -----------------------------------------------------------------

    def script(self, *replies: Reply, path: str | None = None) -> None:
        """Queue replies consumed in order by the next matching requests.

        Text/tool-call replies are consumed by conversational endpoints only
        (chat completions, responses); ``Reply.json`` by any endpoint. With
        ``path``, only requests whose path starts with it consume them. When
        the queue is empty, endpoints fall back to their default behaviour.
        """
        for r in replies:
            if not isinstance(r, Reply):
                raise TypeError(f"expected Reply, got {type(r).__name__}")
        with self._lock:
            self._scripts.extend((r, path) for r in replies)

    def inject(self, fault: Fault, times: int = 1, path: str | None = None) -> None:
        """Make the next ``times`` requests (whose path starts with ``path``,
        if given) fail with ``fault``. Faults are consumed first-in first-out."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected Fault, got {type(fault).__name__}")
        if times < 1:
            return
        with self._lock:
            self._faults.append(_FaultEntry(fault, int(times), path))

    def reset(self) -> None:
        """Clear scripted replies, pending faults, recorded requests and counters."""
        with self._lock:
            self._scripts.clear()
            self._faults.clear()
            self._requests.clear()
            self._request_counter = 0
            self._connection_count = 0

    # -- inspection ----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of all requests received so far (oldest first)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        """The most recent request, or ``None``."""
        with self._lock:
            return self._requests[-1] if self._requests else None

    @property
    def request_count(self) -> int:
        """Number of requests received (faulted ones included)."""
        with self._lock:
            return self._request_counter

    @property
    def connection_count(self) -> int:
        """Number of TCP connections accepted."""
        with self._lock:
            return self._connection_count

    @property
    def pending_replies(self) -> int:
        """Number of scripted replies not yet consumed."""
        with self._lock:
            return len(self._scripts)

    @property
    def pending_faults(self) -> int:
        """Number of injected fault occurrences not yet consumed."""
        with self._lock:
            return sum(e.remaining for e in self._faults)

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<FakeProvider {where}>"

    # -- internal hooks (called from handler threads) -------------------------------

    def _connection_opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._connection_count += 1
            stopping = self._stop_event.is_set()
            if not stopping:
                self._open[sock] = threading.current_thread()
        if stopping:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.pop(sock, None)

    def _next_request_id(self) -> tuple[int, str]:
        with self._lock:
            self._request_counter += 1
            n = self._request_counter
        return n, f"req_{n}"

    def _record(self, req: RecordedRequest) -> None:
        if self.record:
            with self._lock:
                self._requests.append(req)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for i, entry in enumerate(self._faults):
                if entry.path is None or path.startswith(entry.path):
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        del self._faults[i]
                    return entry.fault
        return None

    def _take_reply(self, path: str, conversational: bool) -> Reply | None:
        with self._lock:
            for i, (reply, prefix) in enumerate(self._scripts):
                if prefix is not None and not path.startswith(prefix):
                    continue
                if reply.kind != "json" and not conversational:
                    continue
                del self._scripts[i]
                return reply
        return None
