"""AWS Signature Version 4 as a `rig_sync.auth.Auth`: every request signed by botocore's signer.

    AwsSigV4Auth("us-east-1")                                   # botocore's credential chain
    AwsSigV4Auth("us-east-1", access_key_id="AKIA…", secret_access_key="…", session_token="…")
    AwsSigV4Auth("us-east-1", profile="dev")                    # a named profile of ~/.aws/config
    AwsSigV4Auth("us-east-1", credentials=session.get_credentials())

botocore (`pip install 'rig_sync[bedrock]'`) is imported when one is built, never before. The
chain is botocore's own: environment variables, the shared credentials and config files (profiles,
SSO, assume-role, credential_process), container and instance metadata. Credentials that expire
(`RefreshableCredentials`: assumed roles, SSO, instance roles) are read again for each request
with `get_frozen_credentials()`, which refreshes them before they run out; one request is signed
with one consistent snapshot of key, secret and token.

The signature covers the method, the URL's path and query exactly as they are sent, the headers
and a SHA-256 of the body. `apply` copies what the signer produced (`Authorization`,
`X-Amz-Date`, `X-Amz-Security-Token` for temporary credentials, `X-Amz-Content-SHA256` where the
signer adds it) into the request's headers. The secret key and the session token are secrets (masked
wherever they might show); the access key id is an identifier, and a signature is good for one
request for a few minutes, so neither is.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..auth import Auth
from ..errors import ClientBuildError, CredentialsError

__all__ = ["AwsSigV4Auth", "import_botocore", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'rig_sync[bedrock]'"

# What the signer writes; stripped on a redirect to another host, like any credential.
_SIGNED_OUTPUT = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")
_KEEP_OLD = 4  # secrets given out before a refresh: an error may still echo one
_SIGNED_LOWER = frozenset(name.lower() for name in _SIGNED_OUTPUT)


class _QuietWhileSigning(logging.Filter):
    """Drops botocore.auth's DEBUG lines while this module signs on the thread: its canonical request
    shows `x-amz-security-token` (the session token) in full. Other signing (boto3's) logs as before."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "signing", False)


_QUIET = _QuietWhileSigning()


def import_botocore(provider: str) -> Any:
    """The botocore modules the signer needs, or `ClientBuildError` saying how to install them."""
    try:
        for module in ("botocore.auth", "botocore.awsrequest", "botocore.credentials", "botocore.session"):
            importlib.import_module(module)
    except ImportError:
        raise ClientBuildError(
            f"{provider}: signing requests with AWS credentials needs botocore: {INSTALL_HINT} "
            "(or pass a Bedrock API key: api_key=… or AWS_BEARER_TOKEN_BEDROCK)") from None
    signer_log = logging.getLogger("botocore.auth")
    if _QUIET not in signer_log.filters:
        signer_log.addFilter(_QUIET)
    return importlib.import_module("botocore")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ClientBuildError(f"{name} must be a string, not {type(value).__name__}")
    value = value.strip()
    if not value or not (value.isascii() and value.isprintable()) or " " in value:
        raise ClientBuildError(f"{name} is empty or holds spaces, control or non-ASCII characters; "
                               "check how it was copied")
    return value


class AwsSigV4Auth(Auth):
    """Signs each request with SigV4 for `service` in `region`.

    Exactly one source of credentials: explicit keys (`access_key_id` + `secret_access_key`, and
    `session_token` for temporary ones), a botocore `credentials` object, or the chain (optionally
    for a named `profile`). `provider` only names the client in messages."""

    def __init__(self, region: str, service: str = "bedrock", *, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None,
                 credentials: Any = None, profile: str | None = None, provider: str = "bedrock") -> None:
        self.region = _text("the AWS region", region)
        self.service = _text("the AWS service name", service)
        self.provider = provider
        explicit = access_key_id is not None or secret_access_key is not None or session_token is not None
        given = [what for what, on in (("access keys", explicit), ("credentials=", credentials is not None),
                                       ("a profile", profile is not None)) if on]
        if len(given) > 1:
            raise ClientBuildError(f"{provider}: pass one of access keys, credentials= or a profile, "
                                   f"not {' and '.join(given)}")
        if explicit and (access_key_id is None or secret_access_key is None):
            raise ClientBuildError(f"{provider}: aws_access_key_id and aws_secret_access_key go together "
                                   "(aws_session_token is optional)")
        self._botocore = import_botocore(provider)
        self._lock = threading.Lock()
        self._old: tuple[str, ...] = ()
        self._current: tuple[str, ...] = ()
        self._profile = profile
        self._explicit: tuple[str, str, str | None] | None = None
        if explicit:
            assert access_key_id is not None and secret_access_key is not None
            token = _text("aws_session_token", session_token) if session_token is not None else None
            self._explicit = (_text("aws_access_key_id", access_key_id),
                              _text("aws_secret_access_key", secret_access_key), token)
            self._credentials: Any = self._botocore.credentials.Credentials(*self._explicit)
            self._source = "explicit"
        elif credentials is not None:
            if not (callable(getattr(credentials, "get_frozen_credentials", None))
                    or hasattr(credentials, "secret_key")):
                raise ClientBuildError(f"{provider}: credentials= takes botocore credentials (e.g. "
                                       "boto3.Session().get_credentials()), not "
                                       f"{type(credentials).__name__}")
            self._credentials = credentials
            self._source = "given"
        else:
            self._credentials = self._from_chain()
            self._source = "chain"
        self._snapshot()  # fails here, at build time, if the credentials cannot be read

    def _from_chain(self) -> Any:
        session = self._botocore.session.Session(profile=self._profile)
        try:
            found = session.get_credentials()
        except Exception as exc:  # noqa: BLE001 - a missing profile, a broken config file, SSO logged out
            raise CredentialsError(f"{self.provider}: could not read AWS credentials: {type(exc).__name__}: "
                                   f"{str(exc)[:300]}", provider=self.provider) from None
        if found is None:
            raise ClientBuildError(
                f"{self.provider}: no AWS credentials found. Pass api_key=… (a Bedrock API key, or set "
                "AWS_BEARER_TOKEN_BEDROCK), aws_access_key_id=…/aws_secret_access_key=…, or set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), AWS_PROFILE, or configure "
                "~/.aws/credentials")
        return found

    def _snapshot(self) -> Any:
        """One consistent (key, secret, token), refreshed by botocore where it expires."""
        source = self._credentials
        frozen = source.get_frozen_credentials() if hasattr(source, "get_frozen_credentials") else source
        secret, token = getattr(frozen, "secret_key", None), getattr(frozen, "token", None)
        if not (isinstance(getattr(frozen, "access_key", None), str) and isinstance(secret, str) and secret):
            raise CredentialsError(f"{self.provider}: the AWS credentials have no access key and secret key",
                                   provider=self.provider)
        current = (secret, token) if token else (secret,)
        if current != self._current:
            with self._lock:
                if current != self._current:
                    self._old = (*self._current, *self._old)[: 2 * _KEEP_OLD]
                    self._current = current
        return frozen

    def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
        botocore = self._botocore
        for name in [k for k in headers if k.lower() in _SIGNED_LOWER]:
            del headers[name]  # a stale signature (a redirect hop) is replaced, never sent twice
        request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        _QUIET.local.signing = True
        try:
            botocore.auth.SigV4Auth(self._snapshot(), self.service, self.region).add_auth(request)
        finally:
            _QUIET.local.signing = False
        signed: Mapping[str, str] = request.headers
        for name in _SIGNED_OUTPUT:
            value = signed.get(name)
            if value is not None:
                headers[name] = value
        return url

    def secrets(self) -> tuple[str, ...]:
        return (*self._current, *self._old)

    def header_names(self) -> frozenset[str]:
        return _SIGNED_LOWER

    def __repr__(self) -> str:
        return f"AwsSigV4Auth(region={self.region!r}, service={self.service!r}, credentials={self._source}, ***)"

    def __getstate__(self) -> dict[str, Any]:
        # Keys passed in pickle with the client (as an API key does); credentials from the chain are
        # found again where the client is unpickled (they may be a refreshing object with a lock).
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_botocore", "_old", "_current")}
        if self._source in ("chain", "explicit"):
            del state["_credentials"]
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._old, self._current = (), ()
        self._botocore = import_botocore(self.provider)
        if self._source == "explicit":
            assert self._explicit is not None
            self._credentials = self._botocore.credentials.Credentials(*self._explicit)
        elif self._source == "chain":
            self._credentials = self._from_chain()
