"""Credentials, added to each request as it is sent.

An `Auth` is called for every request that goes to the client's own origin (never to another
host a redirect points at) with the request's method, URL, headers and body, as requests'
`AuthBase` and httpx's `Auth` are. It adds what the API wants (a header, a query parameter, a
signature over the body) and says which strings it holds secret, so that they are masked out of
every error, log line and repr. The transport knows no kind of credential; these are the kinds:

    BearerAuth("sk-…")                         Authorization: Bearer sk-…
    HeaderAuth("x-api-key", "…")               a named header (Anthropic, Azure's api-key, Gemini)
    QueryKeyAuth("key", "…")                   ?key=… on the URL
    TokenAuth(fetch)                           Authorization: Bearer <token>, fetched again before it expires

A client takes one as `Client(auth=...)` (or `.auth(...)` on its builder) in place of an API key;
a provider that signs requests (AWS SigV4) ships its own kind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .errors import ClientBuildError, CredentialsError

__all__ = ["Auth", "HeaderAuth", "BearerAuth", "QueryKeyAuth", "TokenAuth", "MultiAuth", "Token"]


class Auth:
    """Adds credentials to one request. Subclasses override `apply` and `secrets`; both are called
    from many threads at once, so an `Auth` that keeps state (a cached token) guards it."""

    def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
        """Add the credentials to `headers` (this request's own dict) and return the URL to send to.

        `body` is the encoded body (None for none, or for a multipart upload, which is encoded later)."""
        return url

    def secrets(self) -> tuple[str, ...]:
        """Every string this auth puts on the wire that must never be shown."""
        return ()

    def header_names(self) -> frozenset[str]:
        """The (lower-case) names of the headers `apply` sets."""
        return frozenset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(***)"


class HeaderAuth(Auth):
    """A fixed header that carries a key: `HeaderAuth("x-api-key", key)`; `prefix` goes before it
    (`HeaderAuth("Authorization", key, prefix="Bearer ")` is `BearerAuth(key)`)."""

    __slots__ = ("_secret", "_value", "name")

    def __init__(self, name: str, key: str, *, prefix: str = "") -> None:
        _check_text("the header name", name)
        _check_text(f"the value of {name}", key)
        self.name = name
        self._value = prefix + key
        self._secret = key

    def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
        headers[self.name] = self._value
        return url

    def secrets(self) -> tuple[str, ...]:
        return (self._secret,)

    def header_names(self) -> frozenset[str]:
        return frozenset((self.name.lower(),))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, ***)"

    def __getstate__(self) -> tuple[str, str, str]:
        return self.name, self._value, self._secret

    def __setstate__(self, state: tuple[str, str, str]) -> None:
        self.name, self._value, self._secret = state


class BearerAuth(HeaderAuth):
    """`Authorization: Bearer <token>`, the OpenAI convention most providers share."""

    __slots__ = ()

    def __init__(self, token: str) -> None:
        super().__init__("Authorization", token, prefix="Bearer ")

    def __repr__(self) -> str:
        return "BearerAuth(***)"


class QueryKeyAuth(Auth):
    """The key as a query parameter: `QueryKeyAuth("key", key)` sends `…?key=<key>`."""

    __slots__ = ("_key", "_pair", "param")

    def __init__(self, param: str, key: str) -> None:
        _check_text("the query parameter name", param)
        _check_text(f"the value of {param}", key)
        self.param = param
        self._key = key
        self._pair = f"{quote(param, safe='')}={quote(key, safe='')}"

    def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
        return f"{url}{'&' if '?' in url else '?'}{self._pair}"

    def secrets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self._key, quote(self._key, safe=""))))

    def __repr__(self) -> str:
        return f"QueryKeyAuth({self.param!r}, ***)"

    def __getstate__(self) -> tuple[str, str, str]:
        return self.param, self._key, self._pair

    def __setstate__(self, state: tuple[str, str, str]) -> None:
        self.param, self._key, self._pair = state


Token = str | tuple[str, float | None]
"""What a token fetcher returns: the token, or (token, seconds until it expires or None)."""


class TokenAuth(Auth):
    """A bearer token that expires: `fetch()` is called for the first request and again before the
    token it gave expires (`refresh_before` seconds ahead), by one thread while the others wait.

    `fetch` returns the token, or `(token, expires_in_seconds)`; one without a lifetime is kept for
    `lifetime` seconds (default 50 minutes, under the hour Entra ID and Google tokens live). An
    object with `.token` and `.expiry` that refreshes itself (google-auth credentials) fits in a
    two-line fetch. A fetch that raises makes the request raise it, with nothing sent."""

    def __init__(self, fetch: Callable[[], Token], *, header: str = "Authorization", prefix: str = "Bearer ",
                 refresh_before: float = 60.0, lifetime: float = 3000.0) -> None:
        if not callable(fetch):
            raise ClientBuildError(f"TokenAuth takes a function that returns a token, not {type(fetch).__name__}")
        _check_text("the header name", header)
        if not (refresh_before >= 0 and lifetime > 0):
            raise ClientBuildError("refresh_before must be >= 0 and lifetime > 0 (seconds)")
        self._fetch = fetch
        self.header = header
        self._prefix = prefix
        self._refresh_before = refresh_before
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._token = ""
        self._old: tuple[str, ...] = ()  # tokens given out before: an error may still echo one
        self._expires = 0.0

    def token(self) -> str:
        """The current token, fetched first if there is none or it is about to expire."""
        if self._token and time.monotonic() < self._expires:
            return self._token
        with self._lock:
            if not self._token or time.monotonic() >= self._expires:
                self._renew()
            return self._token

    def _renew(self) -> None:
        got = self._fetch()
        token, expires_in = got if isinstance(got, tuple) and len(got) == 2 else (got, None)
        if not (isinstance(token, str) and token and token.isascii() and token.isprintable()):
            raise CredentialsError("the token fetched is not a non-empty string of printable ASCII characters "
                                   f"(got {type(token).__name__}); check the function given to TokenAuth")
        life = self._lifetime if expires_in is None else float(expires_in)
        if not life == life:  # NaN: treated as already expired
            life = 0.0
        if self._token and self._token != token:
            self._old = (self._token, *self._old)[:4]
        self._token = token
        self._expires = time.monotonic() + max(0.0, life - self._refresh_before)

    def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
        headers[self.header] = self._prefix + self.token()
        return url

    def secrets(self) -> tuple[str, ...]:
        return (self._token, *self._old) if self._token else self._old

    def header_names(self) -> frozenset[str]:
        return frozenset((self.header.lower(),))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_token"], state["_old"], state["_expires"] = "", (), 0.0  # fetched again where unpickled
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class MultiAuth(Auth):
    """Several auths on one request, applied in order (e.g. a gateway's header beside the API key)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Auth) -> None:
        for part in parts:
            if not isinstance(part, Auth):
                raise ClientBuildError(f"MultiAuth takes Auth objects, not {type(part).__name__}")
        self.parts = parts

    def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
        for part in self.parts:
            url = part.apply(method, url, headers, body)
        return url

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for part in self.parts for s in part.secrets())

    def header_names(self) -> frozenset[str]:
        return frozenset().union(*(part.header_names() for part in self.parts))

    def __repr__(self) -> str:
        return f"MultiAuth({', '.join(map(repr, self.parts))})"

    def __getstate__(self) -> tuple[Auth, ...]:
        return self.parts

    def __setstate__(self, state: tuple[Auth, ...]) -> None:
        self.parts = state


def combine(*auths: Auth | None) -> Auth | None:
    """One auth from those given (None where there is none)."""
    parts = [a for a in auths if a is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiAuth(*parts)


def _check_text(what: str, value: object) -> None:
    # Refused without echoing the value: it may be a key, and `requests` would quote it in an error.
    if not isinstance(value, str):
        raise ClientBuildError(f"{what} must be a string, not {type(value).__name__}")
    if not value or not (value.isascii() and value.isprintable()):
        raise ClientBuildError(f"{what} is empty or contains control or non-ASCII characters; check how it was copied")
