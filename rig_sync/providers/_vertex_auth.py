"""Google credentials for Vertex AI: OAuth access tokens from google-auth (the optional `vertex`
extra), handed to rig_sync's `TokenAuth`, which fetches them again before they expire.

google-auth is imported only here, and only when a client needs Google credentials (none of
`token=`, `api_key=` or `auth=` was given); its absence is a `ClientBuildError` naming the extra.
"""

from __future__ import annotations

import datetime
import importlib
from typing import Any

from ..auth import Token
from ..errors import ClientBuildError, CredentialsError

__all__ = ["SCOPES", "GoogleCredentials", "default_credentials"]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# A token with less than this left is refreshed first (TokenAuth asks a minute before expiry;
# google-auth's own margin is 3 min 45 s).
_MARGIN = 300.0


def _google(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ClientBuildError(
            "vertex: Google credentials need google-auth, which is not installed: pip install 'rig_sync[vertex]' "
            "(or pass token='ya29…', an express mode api_key, or auth=)") from None


def default_credentials() -> tuple[Any, str | None]:
    """Application Default Credentials (`google.auth.default`) and the project they name, if any."""
    auth = _google("google.auth")
    exceptions = _google("google.auth.exceptions")
    try:
        credentials, project = auth.default(scopes=list(SCOPES))
    except exceptions.GoogleAuthError as exc:
        raise ClientBuildError(
            f"vertex: no Google credentials found ({type(exc).__name__}: {str(exc)[:300]}). Run `gcloud auth "
            "application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or pass token=, credentials= or "
            "auth=") from None
    return credentials, project if isinstance(project, str) and project else None


def _seconds_left(expiry: object) -> float | None:
    if not isinstance(expiry, datetime.datetime):
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    if expiry.tzinfo is None:  # google-auth keeps naive UTC times
        now = now.replace(tzinfo=None)
    return (expiry - now).total_seconds()


class GoogleCredentials:
    """A `TokenAuth` fetch over google-auth credentials (anything with `token`, `expiry` and
    `refresh(request)`): the access token and its seconds left, refreshed first when it has
    less than five minutes left. `TokenAuth` calls it from one thread at a time."""

    def __init__(self, credentials: Any) -> None:
        if not callable(getattr(credentials, "refresh", None)):
            raise ClientBuildError("vertex: credentials must be google-auth credentials (with a refresh() method), "
                                   f"not {type(credentials).__name__}")
        self.credentials = credentials

    def __call__(self) -> Token:
        credentials = self.credentials
        left = _seconds_left(getattr(credentials, "expiry", None))
        if not getattr(credentials, "token", None) or (left is not None and left < _MARGIN):
            request = _google("google.auth.transport.requests").Request()
            try:
                credentials.refresh(request)
            except _google("google.auth.exceptions").GoogleAuthError as exc:
                raise CredentialsError(f"refreshing the Google credentials failed ({type(exc).__name__}: "
                                       f"{str(exc)[:300]})", provider="vertex") from None
            left = _seconds_left(getattr(credentials, "expiry", None))
        token = getattr(credentials, "token", None)
        if not isinstance(token, str) or not token:
            raise CredentialsError("the Google credentials gave no access token", provider="vertex")
        return token, left

    def __repr__(self) -> str:
        return f"GoogleCredentials({type(self.credentials).__name__})"
