"""The fake provider itself: :class:`FakeProvider`, its settings, lifecycle (a server thread,
started and stopped) and the public face of its state (scripting, faults, recorded requests).

Wire formats live in the dialect modules (``_openai.py``, ...), which register routes in
``_routes``; the HTTP server is ``_http``, a request's way through the fake ``_exchange``.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import final

from ._exchange import Exchange
from ._faults import Fault
from ._http import Server
from ._jobs import JobControls
from ._ndims import ndims_for
from ._state import FakeState
from ._values import RecordedRequest, Reply

__all__ = ["FakeProvider"]


@final
class FakeProvider(JobControls):
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
        batch_polls: int | None = 2,
    ) -> None:
        """``latency`` adds a server-side delay (seconds) to every reply;
        ``require_key`` makes the server accept only that API key (by default
        any non-empty key is accepted); ``record=False`` keeps no copy of the
        requests (for long soak and load runs: counters still count); ``tls``
        (a server-side ``ssl.SSLContext``) serves HTTPS instead of HTTP;
        ``compress`` gzips whole (not streamed) answers for clients that accept
        gzip, as real providers do; ``models`` lists the only model names
        served (the rest are refused in each provider's own shape), ``None``
        (the default) serves any name; ``batch_polls`` is how many status
        polls a batch job takes to complete (see ``_jobs.py``; ``None``: only
        ``finish_jobs()`` ends it)."""
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
        self._state = FakeState()
        self.batch_polls = batch_polls
        self._lock = self._state.lock  # one lock guards the server fields and the state
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind and start serving in a daemon thread (no-op when running)."""
        with self._lock:
            if self._server is not None:
                return self
            self._state.stop_event.clear()
            server = Server((self.host, self.port), self, self._state, Exchange(self, self._state))
            wake_r, wake_w = socket.socketpair()
            thread = threading.Thread(
                target=server.serve_until,
                args=(self._state.stop_event, wake_r),
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
            self._state.stop_event.set()
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
        open_conns = self._state.open_connections()
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
        self._state.add_replies(replies, path)

    def inject(self, fault: Fault, times: int = 1, path: str | None = None) -> None:
        """Make the next ``times`` requests (whose path starts with ``path``,
        if given) fail with ``fault``. Faults are consumed first-in first-out."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected Fault, got {type(fault).__name__}")
        if times < 1:
            return
        self._state.add_fault(fault, int(times), path)

    def reset(self) -> None:
        """Clear scripted replies, pending faults, recorded requests, counters and batch jobs."""
        self._state.clear()

    # -- inspection ----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of all requests received so far (oldest first)."""
        with self._lock:
            return list(self._state.requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        """The most recent request, or ``None``."""
        with self._lock:
            return self._state.requests[-1] if self._state.requests else None

    @property
    def request_count(self) -> int:
        """Number of requests received (faulted ones included)."""
        with self._lock:
            return self._state.request_counter

    @property
    def connection_count(self) -> int:
        """Number of TCP connections accepted."""
        with self._lock:
            return self._state.connection_count

    @property
    def pending_replies(self) -> int:
        """Number of scripted replies not yet consumed."""
        with self._lock:
            return len(self._state.scripts)

    @property
    def pending_faults(self) -> int:
        """Number of injected fault occurrences not yet consumed."""
        return self._state.pending_faults()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<FakeProvider {where}>"
