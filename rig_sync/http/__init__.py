"""HTTP for every provider: the only code in rig_sync that touches `requests`.

One `Transport` per client owns a pooled `requests.Session`, the timeouts, the retry policy
(a `urllib3.Retry` subclass, so the waits happen where urllib3 already does them), the mapping
of status and body to the error tree, secret redaction, redirects that never carry credentials
to another host, and the observation hooks. It knows no provider: a provider's own error shapes
and headers come in as its `Conventions`, its credentials as its `rig_sync.auth.Auth`.

Environment settings (proxies, CA bundle) are resolved once when the transport is built:
`requests.Session.request` rescans the whole environment on every call otherwise.

On our own sessions a JSON call without a proxy goes straight to the mounted adapter's urllib3
pool (same pool, retries, timeouts and TLS settings), skipping requests' per-call objects; a
caller's session, multipart uploads, proxies and test mocks of requests go through requests.

The modules, lowest first: `_config` (values), `_urls`, `_headers` (a lean read of response
headers), `_cancel` (scopes and deadlines), `_failures` (what went wrong), `_body` (reading
answers), `_pool` (connections), `_retry`, `conventions` (what providers register), `_transport`
(the layered send).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Most bytes of an answer read whole (not streamed), once decoded: a compressed body inflates a
# thousandfold. Images, audio and large embedding batches fit; `Transport(max_response_bytes=)`
# sets it per transport, and changing this sets it for every transport without its own.
MAX_RESPONSE_BYTES = 64 * 2**20

from ._config import RateLimiterLike, RetryPolicy, Timeout, parse_retry_after  # noqa: E402
from .conventions import Conventions  # noqa: E402

# The rest needs requests and urllib3: imported on first use (a client imports it when it is
# built), so that importing a provider module stays light.
_LAZY = {"Response": "_body", "StreamResponse": "_body", "CancelScope": "_cancel", "deadline": "_cancel",
         "Transport": "_transport", "join_url": "_urls", "shown_url": "_urls", "validate_base_url": "_urls"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rig_sync.http' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from ._body import Response, StreamResponse
    from ._cancel import CancelScope, deadline
    from ._transport import Transport
    from ._urls import join_url, shown_url, validate_base_url

__all__ = [
    "MAX_RESPONSE_BYTES",
    "CancelScope",
    "Conventions",
    "deadline",
    "Timeout",
    "RetryPolicy",
    "RateLimiterLike",
    "Transport",
    "Response",
    "StreamResponse",
    "join_url",
    "parse_retry_after",
    "shown_url",
    "validate_base_url",
]
