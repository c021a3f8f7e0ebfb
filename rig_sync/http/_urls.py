"""URLs: base URL checks, joining, origins, and secrets in a URL masked wherever one is shown."""

from __future__ import annotations

import base64
import functools
import logging
import re
from urllib.parse import unquote, unquote_plus, urlsplit

import requests

from .. import errors


def validate_base_url(url: str, provider: str) -> str:
    """`url` without a trailing slash, or `InvalidBaseURLError` (credentials are never echoed)."""
    if not isinstance(url, str) or not url.strip():
        raise errors.InvalidBaseURLError(f"{provider}: base URL must be a non-empty string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = shown_url(url) if "@" not in url else "<url with credentials>"
        raise errors.InvalidBaseURLError(
            f"{provider}: base URL {shown!r} needs an http:// or https:// scheme and a host, "
            "e.g. 'https://api.example.com/v1'"
        )
    if parts.username or parts.password:
        raise errors.InvalidBaseURLError(
            f"{provider}: base URL must not contain credentials (user:pass@); "
            "pass the key as api_key instead"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise errors.InvalidBaseURLError(f"{provider}: base URL {shown_url(url)!r} has an invalid port") from None
    if parts.fragment:
        raise errors.InvalidBaseURLError(f"{provider}: base URL {shown_url(url)!r} must not contain a #fragment")
    return url.strip().rstrip("/")


def prefix_hint(base_url: str, prefix: str) -> str:
    """What to say on a 404 when `base_url` lacks every segment of the API's path `prefix` ('' if it
    has one: `http://host/openai/v1` for `/v1` may be a proxy's own layout, not a mistake)."""
    wanted = [part for part in prefix.split("/") if part]
    have = set(urlsplit(base_url.partition("?")[0]).path.split("/"))
    if not wanted or have.intersection(wanted):
        return ""
    needed = "/" + "/".join(wanted)
    return f"the base URL {base_url} probably needs {needed}: try base_url={join_url(base_url, needed)!r}"


def join_url(base: str, path: str) -> str:
    """Join without ever touching the scheme's `//` (`https://x/v1` + `/chat` -> `https://x/v1/chat`).

    An absolute `path` is returned as is; a query on the base (`?api-version=…`) is kept, after
    the joined path and before the path's own query.
    """
    if path[:8].lower().startswith(("http://", "https://")):
        return path
    base_path, _, base_query = base.partition("?")
    path_part, _, path_query = path.partition("?")
    url = f"{base_path.rstrip('/')}/{path_part.lstrip('/')}" if path_part.strip("/") else base_path
    query = "&".join(q for q in (base_query, path_query) if q)
    return f"{url}?{query}" if query else url


@functools.lru_cache(maxsize=512)  # a client calls few distinct URLs, each many times
def origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def origin_text(origin: tuple[str, str, int | None]) -> str:
    return "{}://{}:{}".format(*origin)


# Query parameters whose values are secret by their name (`?key=`, `?api_key=`, `?access_token=`,
# `?sig=` …): masked wherever a URL is shown, and redacted like a key.
SECRET_NAME = re.compile(r"key|token|secret|passw|auth|sig|credential", re.IGNORECASE)


def shown_url(url: str) -> str:
    """`url` fit to show in a repr, an error or a log: its user:password and the values of query
    parameters named like secrets are masked (`https://***@host/v1?key=***&api-version=2024-10-21`)."""
    base, hash_, fragment = url.partition("#")
    rest, question, query = base.partition("?")
    scheme, slashes, tail = rest.partition("://")
    if slashes:
        host, slash, path = tail.partition("/")
        if "@" in host:
            rest = f"{scheme}://***@{host.rpartition('@')[2]}{slash}{path}"
    if query:
        pairs = (pair.partition("=") for pair in query.split("&"))
        query = "&".join(f"{name}{eq}***" if value and SECRET_NAME.search(name) else f"{name}{eq}{value}"
                         for name, eq, value in pairs)
    return f"{rest}{question}{query}{hash_}{fragment}"


class _MaskQuerySecrets(logging.Filter):
    """Masks query secrets in urllib3's request log lines, which show each request's target
    (`"POST /v1/chat?key=…"`). Installed once a transport's base URL holds a query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(shown_url(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        return True


MASK_QUERY_SECRETS = _MaskQuerySecrets()


def secrets_in_url(url: str) -> set[str]:
    """The secrets in `url`, in each spelling they may come back in: its password (as written and
    decoded), `user:password` and its base64 (Basic auth, a proxy's `Proxy-Authorization`), and the
    values of query parameters named like secrets."""
    try:
        parts = urlsplit(url)
        password, user = parts.password, parts.username or ""
    except ValueError:
        return set()
    found: set[str] = set()
    if password:
        pair = f"{unquote(user)}:{unquote(password)}"
        try:
            basic = base64.b64encode(pair.encode("latin-1")).decode()  # as requests encodes it
        except UnicodeEncodeError:
            basic = base64.b64encode(pair.encode()).decode()
        found |= {password, unquote(password), pair, basic}
    for name, _, value in (pair.partition("=") for pair in parts.query.split("&")):
        if value and SECRET_NAME.search(unquote_plus(name)):
            found |= {value, unquote_plus(value)}
    return found


@functools.lru_cache(maxsize=512)
def request_target(url: str) -> str:
    """The path and query to put on the request line, quoted as requests would quote them."""
    parts = urlsplit(url)
    target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
    return requests.utils.requote_uri(target)
