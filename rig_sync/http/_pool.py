"""Connections and pools: urllib3 pools whose connections serve the thread's `CancelScope`, send a
request's head and small body in one write, and tell a stale kept-alive socket apart; requests'
adapter on them; and the direct route JSON calls take to a pool."""

from __future__ import annotations

import contextlib
import copy
import functools
import http.client
import socket
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import EmptyPoolError
from urllib3.util.connection import allowed_gai_family

from ._cancel import CancelScope, Cut, NoSlot, current_scope, cut_off, interrupted
from ._headers import LeanResponse

# Largest body sent in the same write as the request head.
ONE_WRITE_LIMIT = 64 * 1024


def scoped_connection_class(connection_class: type[Any]) -> type[Any]:
    """A urllib3 connection class that honours its request's `CancelScope` (its waits end by the
    scope's deadline, and a cancel ends even a connect) and sends the request head and a small body
    in one write.

    urllib3 writes them separately: with many threads sharing one GIL, each extra write is another
    system call at which the thread hands the GIL on and waits to get it back, and another TCP
    segment for the server to read. Only an open connection holds the head back,
    so nothing else (a proxy's CONNECT) is ever written in between."""

    class Connection(connection_class):  # type: ignore[misc]
        response_class = LeanResponse  # headers read without the email parser (`_headers`)
        _rig_held: bytes | None = None
        _rig_hold = False
        _rig_scope: CancelScope | None = None  # of the request using it
        _rig_cut: str | None = None  # why it was cut off ("cancelled", "closed"), for its readers
        _rig_timeout: Any = None

        @property
        def timeout(self) -> Any:
            # urllib3 sets this before connecting, sending and waiting for the answer (and we before
            # each read of a body with a deadline): each wait is cut to the time left.
            scope = self._rig_scope
            if scope is None or scope.deadline is None:
                return self._rig_timeout
            left = max(scope.deadline - time.monotonic(), 0.001)
            value = self._rig_timeout
            return min(value, left) if isinstance(value, (int, float)) else left

        @timeout.setter
        def timeout(self, value: Any) -> None:
            self._rig_timeout = value

        def _new_conn(self) -> socket.socket:
            scope = self._rig_scope
            return super()._new_conn() if scope is None else open_socket(self, scope)

        def connect(self) -> None:
            super().connect()
            # cancel() or close() may have come while connecting, before there was a socket to shut down.
            why = "cancelled" if self._rig_scope is not None and self._rig_scope.cancelled else self._rig_cut
            if why is not None:
                self.close()
                raise Cut(why)

        _rig_answered = 0  # answers this connection has carried: more than none means it is reused

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            try:
                response = super().getresponse(*args, **kwargs)
            except (ConnectionResetError, BrokenPipeError) as exc:  # RemoteDisconnected is one too
                if self._rig_answered:  # the server dropped an idle kept-alive socket as we reused it
                    raise StaleConnection(f"a kept-alive connection was closed before answering: {exc}") from exc
                raise
            self._rig_answered += 1
            return response

        def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> None:
            self._rig_hold = (self.sock is not None and isinstance(body, bytes)
                              and 0 < len(body) <= ONE_WRITE_LIMIT)
            try:
                super().request(method, url, body, headers, **kwargs)
            finally:
                self._rig_hold, self._rig_held = False, None

        def send(self, data: Any) -> None:
            if self._rig_hold:
                if self._rig_held is None:  # the head: wait for the body
                    self._rig_held = bytes(data)
                    return
                data, self._rig_held, self._rig_hold = self._rig_held + data, None, False
            super().send(data)

    Connection.__name__ = f"Rig{connection_class.__name__}"
    return Connection


class StaleConnection(http.client.RemoteDisconnected):
    """A reused connection the server had closed (llama-server closes one after a stream): nothing was
    answered, so the request is sent again at once on a new connection, not counted as a retry."""


def open_socket(conn: Any, scope: CancelScope) -> socket.socket:
    """urllib3's `HTTPConnection._new_conn`, with each socket held by `scope` while it connects, so that
    `cancel()` can shut it down: that ends the connect at once instead of at the connect timeout."""
    try:
        found = socket.getaddrinfo(conn._dns_host.strip("[]"), conn.port, allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    error: OSError = OSError("getaddrinfo returned no address")
    timeout = conn.timeout
    for family, kind, proto, _, address in found:
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            with scope._holding(sock, scope._held):
                sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    if isinstance(error, TimeoutError):
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={timeout})") from error
    raise urllib3.exceptions.NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


def scoped_pool_class(pool_class: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """A urllib3 pool class whose connections serve the thread's `CancelScope`, whose wait for a free
    connection is bounded (`_rig_wait`, the scope's deadline) and ends on a cancel or a close, and
    whose `close()` cuts off the connections in use too."""

    class Scoped(pool_class):  # type: ignore[valid-type, misc]
        ConnectionCls = scoped_connection_class(pool_class.ConnectionCls)
        _rig_wait: float | None = None  # longest wait for a free connection (None: unbounded)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._rig_lock = threading.Lock()
            self._rig_conns: weakref.WeakSet[Any] = weakref.WeakSet()  # every connection made: close() cuts them

        def _new_conn(self) -> Any:
            conn = super()._new_conn()
            with self._rig_lock:
                self._rig_conns.add(conn)
            return conn

        def _get_conn(self, timeout: float | None = None) -> Any:
            scope = current_scope()
            try:
                conn = super()._get_conn(timeout=0)  # a free connection, or EmptyPoolError at once
            except EmptyPoolError:
                conn = self._wait_for_conn(timeout, scope)
            conn._rig_cut = None
            if scope is not None:
                try:
                    scope._take(conn)
                except Cut:
                    conn.close()  # urllib3 gives its slot back (as None)
                    raise
            return conn

        def _wait_for_conn(self, timeout: float | None, scope: CancelScope | None) -> Any:
            queue = self.pool
            limit = timeout if timeout is not None else self._rig_wait
            end = None if limit is None else time.monotonic() + limit
            if scope is not None and scope.deadline is not None:
                end = scope.deadline if end is None else min(end, scope.deadline)
            try:
                with scope._holding(queue, scope._waiting) if scope is not None else contextlib.nullcontext():
                    while True:
                        with queue.not_empty:  # woken by a connection given back, a cancel or a close
                            while not queue._qsize():
                                why = interrupted(scope, self)
                                left = None if end is None else end - time.monotonic()
                                if why is not None:
                                    raise NoSlot(self, why)
                                if left is not None and left <= 0:
                                    raise EmptyPoolError(self, f"no free connection within {limit:g}s")
                                queue.not_empty.wait(left)
                        try:
                            return super()._get_conn(timeout=0)
                        except EmptyPoolError:
                            continue  # another thread took it first
            except Cut as cut:  # cancelled before it began to wait
                raise NoSlot(self, cut.why) from None

        def _put_conn(self, conn: Any) -> None:
            # Whichever thread gives it back: a connection back in the pool is no scope's to cut.
            scope = getattr(conn, "_rig_scope", None)
            if scope is not None:
                conn._rig_scope = None
                scope._give_back(conn)
            super()._put_conn(conn)

        def close(self) -> None:
            queue = self.pool
            super().close()  # closes the idle connections; one given back later is closed then
            with self._rig_lock:
                conns = list(self._rig_conns)
            for conn in conns:  # those in use: their users wake with an error at once
                cut_off(conn, "closed")
            if queue is not None:
                with queue.not_empty:  # and so do the calls waiting for one
                    queue.not_empty.notify_all()

    Scoped.__name__ = f"Scoped{pool_class.__name__}"
    return Scoped


SCOPED_POOLS = {"http": scoped_pool_class(HTTPConnectionPool), "https": scoped_pool_class(HTTPSConnectionPool)}


class Adapter(HTTPAdapter):
    """requests' adapter on urllib3 pools that honour `CancelScope`, wait at most `pool_wait` seconds
    for a free connection, and are closed, every one, by `close()` (urllib3 2's `PoolManager.clear()`
    only forgets its pools, leaving their sockets open)."""

    __attrs__ = [*HTTPAdapter.__attrs__, "pool_wait"]
    pool_wait: float | None = None

    def __init__(self, *args: Any, pool_wait: float | None = None, **kwargs: Any) -> None:
        self.pool_wait = pool_wait
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        self._pools_lock = threading.Lock()
        self._pools: weakref.WeakSet[HTTPConnectionPool] = weakref.WeakSet()
        # Factories where urllib3 expects classes: it only calls them (PoolManager._new_pool).
        self._pool_classes: dict[str, Any] = {
            scheme: functools.partial(self._new_pool, pool_class) for scheme, pool_class in SCOPED_POOLS.items()}
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # a SOCKS manager keeps its own pool classes
            manager.pool_classes_by_scheme = self._pool_classes
        return manager

    def _new_pool(self, pool_class: type[HTTPConnectionPool], *args: Any, **kwargs: Any) -> HTTPConnectionPool:
        pool = pool_class(*args, **kwargs)
        pool._rig_wait = self.pool_wait  # type: ignore[attr-defined]
        with self._pools_lock:
            self._pools.add(pool)
        return pool

    def close(self) -> None:
        super().close()
        with self._pools_lock:
            pools = list(self._pools)
        for pool in pools:
            pool.close()


class EnvView:
    """The parts of a session that `merge_environment_settings` reads."""

    def __init__(self, session: requests.Session) -> None:
        self.trust_env = True
        self.stream = False
        self.proxies = session.proxies
        self.verify = session.verify
        self.cert = session.cert


def env_view(session: requests.Session) -> Any:
    # Our own sessions have trust_env off; the environment is still read, here, once.
    return EnvView(session) if session.trust_env is False else session


class DirectRoute:
    """Where JSON calls to one origin go without requests: the adapter's pool for it."""

    def __init__(self, adapter: HTTPAdapter, url: str, settings: Mapping[str, Any]) -> None:
        prepared = requests.PreparedRequest()
        prepared.prepare(method="GET", url=url)
        self._host, self._pool_kwargs = adapter.build_connection_pool_key_attributes(
            prepared, settings["verify"], settings["cert"])
        self._adapter, self._url, self._settings = adapter, url, settings
        self._pool: HTTPConnectionPool | None = None

    def pool(self) -> HTTPConnectionPool:
        pool = self._pool
        if pool is None or pool.pool is None:  # first use, or closed (the pool manager let it go)
            pool = self._adapter.poolmanager.connection_from_host(**self._host, pool_kwargs=self._pool_kwargs)
            # What requests' send does to each pool it is about to use (it checks the CA bundle path).
            self._adapter.cert_verify(pool, self._url, self._settings["verify"],  # type: ignore[no-untyped-call]
                                      self._settings["cert"])
            self._pool = pool
        return pool


def without_connections(session: requests.Session) -> requests.Session:
    """A copy of a user's session sharing its settings but none of its pooled sockets."""
    clone = copy.copy(session)  # Session.__setstate__: the same settings objects
    # An HTTPAdapter's __setstate__ builds a new, empty pool manager.
    clone.adapters = OrderedDict((prefix, copy.copy(adapter)) for prefix, adapter in session.adapters.items())
    return clone


def sending_is_patched() -> bool:
    """Whether a test library has replaced requests' sending (responses patches `HTTPAdapter.send`,
    requests-mock `Session.get_adapter`): then every call must go through it, never around it."""
    send, get_adapter = HTTPAdapter.send, requests.Session.get_adapter
    return not (getattr(send, "__module__", None) == "requests.adapters"
                and getattr(send, "__qualname__", None) == "HTTPAdapter.send"
                and getattr(get_adapter, "__module__", None) == "requests.sessions"
                and getattr(get_adapter, "__qualname__", None) == "Session.get_adapter")
