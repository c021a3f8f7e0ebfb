"""Provider clients: the base class and one generic builder; the capability mixins and their
table live in `capabilities` (re-exported here).

A provider module defines `Client(ProviderClient, CompletionClient, …)` with its name, default
base URL, environment variables and auth headers, and exposes `ClientBuilder = Client.Builder`
(a `ClientBuilder[Client]`: its `build()` is typed as that provider's client).
Everything else (key checks, base URL checks, environment defaults, transport construction,
from_env, from_value, builder methods, pickling, repr without secrets) lives here once.

As in openai-python, an argument left out is read from the environment when the client is built:
the key from `env_api_key` (e.g. OPENAI_API_KEY), the base URL from `env_base_url`
(OPENAI_BASE_URL), the timeout from `<PROVIDER>_TIMEOUT` (seconds) and the retry count from
`<PROVIDER>_MAX_RETRIES`. An explicit argument always wins; nothing is read after that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

import attrs

from .._checks import whole
from ..auth import Auth, BearerAuth
from ..errors import ClientBuildError, MissingAPIKeyError
from ..http import Conventions, RateLimiterLike, RetryPolicy, Timeout
from ..http.conventions import COMMON
from . import capabilities
from .capabilities import (
    AudioGenerationClient,
    BatchJobsClient,
    Capability,
    ClientOperations,
    CompletionClient,
    EmbeddingsClient,
    ImageGenerationClient,
    ModelInfo,
    ModelListingClient,
    RerankClient,
    TranscriptionClient,
)
from .options import ProviderOptions, checked, env_value, option

if TYPE_CHECKING:
    import requests

__all__ = [
    "ProviderValue",
    "ProviderClient",
    "ClientBuilder",
    "Capability",
    "ModelInfo",
    "CompletionClient",
    "EmbeddingsClient",
    "TranscriptionClient",
    "ImageGenerationClient",
    "AudioGenerationClient",
    "RerankClient",
    "ModelListingClient",
    "BatchJobsClient",
    "CAPABILITIES",
    "Access",
    "ProviderOptions",
    "option",
    "checked",
    "env_value",
]

C = TypeVar("C", bound="ProviderClient")


class Access(NamedTuple):
    """What a client sends with: its key (or None), its base URL and its auth (or None)."""

    api_key: str | None
    base_url: str
    auth: Auth | None


_is_str = attrs.validators.instance_of(str)


def _is_mapping(_: Any, __: Any, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"ProviderValue options must be a mapping, not {type(value).__name__}")


@attrs.frozen
class ProviderValue:
    """Settings to build a client from at run time: a key plus optional base URL and options.

    `ProviderValue("sk-…")`, or `ProviderValue("key", options={"api_version": "2024-10-21"})`.
    """

    api_key: str | None = attrs.field(
        default=None, repr=lambda k: "***" if k else "None", validator=attrs.validators.optional(_is_str)
    )
    base_url: str | None = attrs.field(default=None, validator=attrs.validators.optional(_is_str))
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False, validator=_is_mapping)

    @classmethod
    def simple(cls, api_key: str) -> ProviderValue:
        return cls(api_key)


# The capabilities, derived from the table: name -> the mixin a client class inherits to have it.
CAPABILITIES: dict[str, type] = {str(r.capability): r.mixin for r in capabilities.TABLE}


class _BuilderOf:
    """`Client.Builder`: the client class's own `ClientBuilder` subclass, typed as building that class
    (so `openai.ClientBuilder("k").build()` is an `openai.Client` to a type checker)."""

    def __get__(self, instance: object, owner: type[C]) -> type[ClientBuilder[C]]:
        made: type[ClientBuilder[C]] | None = owner.__dict__.get("_builder_class")
        if made is None:  # a class made without __init_subclass__ running (none in practice)
            made = _builder_class(owner)
            type.__setattr__(owner, "_builder_class", made)
        return made


def _builder_class(cls: type[C]) -> type[ClientBuilder[C]]:
    made: type[ClientBuilder[C]] = type(f"{cls.__name__}Builder", (ClientBuilder,), {"client_class": cls})
    return made


class _FrozenAfterInit(type):
    """Freezes a client once its whole `__init__` chain (subclasses included) has run."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        client = super().__call__(*args, **kwargs)
        object.__setattr__(client, "_frozen", True)
        return client

    @property
    def __signature__(cls) -> Any:
        # Without it, inspect.signature/help()/Jupyter's `Client?` show this metaclass's
        # `(*args, **kwargs)`. Computed on demand so that importing a provider imports no `inspect`.
        return _init_signature(cls)  # type: ignore[arg-type]  # the metaclass of ProviderClient only


def _init_signature(cls: type[ProviderClient]) -> Any:
    """The parameters of `cls.__init__` without `self`; a `**kwargs` that is passed up the chain
    is replaced by the keyword parameters of the next `__init__`, and the base's `**options` by
    the fields of the provider's `Options` (e.g. Azure's `endpoint`, `api_version`, `token`)."""
    import inspect

    params: list[inspect.Parameter] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        taken = {p.name for p in params}
        more = [p for p in list(inspect.signature(init).parameters.values())[1:] if p.name not in taken]
        if params:  # the rest of the chain only fills in the keyword arguments
            more = [p for p in more if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD)]
        params = [p for p in params if p.kind is not p.VAR_KEYWORD] + more
        if not any(p.kind is p.VAR_KEYWORD for p in params) or klass is ProviderClient:
            break
    options = [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                                 annotation=field.type) for field in attrs.fields(cls.Options) if field.name != "given"]
    if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
        params = params[:-1] + options
    return inspect.Signature(params)


class ProviderClient(ClientOperations, metaclass=_FrozenAfterInit):
    """Base of every provider client. Immutable and thread-safe once built; pickles without
    its live connections (they are rebuilt on first use where it is unpickled).

    What a client can do is the capability mixins it inherits (`rig_sync.client.capabilities`);
    every client also answers `list_models()` and `verify()`, with `UnsupportedFeature` where its
    provider lists no models."""

    provider: ClassVar[str]
    default_base_url: ClassVar[str]
    env_api_key: ClassVar[tuple[str, ...]] = ()  # read in order when no key is passed; the first set wins
    env_base_url: ClassVar[tuple[str, ...]] = ()  # likewise for base_url
    env_options: ClassVar[tuple[str, ...]] = ()  # other variables read: the options' (added), botocore's, …
    env_timeout: ClassVar[str] = ""  # <PROVIDER>_TIMEOUT: seconds, when no timeout is passed
    env_max_retries: ClassVar[str] = ""  # <PROVIDER>_MAX_RETRIES, when neither max_retries nor retry is passed
    requires_api_key: ClassVar[bool] = True
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions  # the provider's own keyword options
    conventions: ClassVar[Conventions] = COMMON  # the provider's own error shapes and headers
    streams_completions: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    Builder = _BuilderOf()  # `Client.Builder`, typed as building `Client`
    _builder_class: ClassVar[type[ClientBuilder[Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "provider" in cls.__dict__:
            name = cls.provider.upper()
            if "env_base_url" not in cls.__dict__:
                cls.env_base_url = (f"{name}_BASE_URL",)
            if "env_api_key" not in cls.__dict__:
                cls.env_api_key = (f"{name}_API_KEY",)
            cls.env_timeout = f"{name}_TIMEOUT"
            cls.env_max_retries = f"{name}_MAX_RETRIES"
        cls.env_options = tuple(dict.fromkeys((*cls.Options.env_variables(), *cls.env_options)))
        cls._builder_class = _builder_class(cls)  # each client class builds itself, subclasses too

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: Timeout | float | tuple[float, float] | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        pool_size: int = 64,
        verify: bool | str = True,
        rate_limiter: RateLimiterLike | None = None,
        max_response_bytes: int | None = None,
        auth: Auth | None = None,
        **options: Any,
    ) -> None:
        """`api_key`, `base_url`, `timeout` and `max_retries` left out (None) are read from the
        provider's environment variables (see `env_variables()`), else the defaults apply.

        `auth` (a `rig_sync.auth.Auth`, e.g. a `TokenAuth` that refreshes) takes the place of the key:
        it is called for every request, and no key is read from the environment.

        Raises `MissingAPIKeyError` (naming the variables) when the provider needs a key and
        none is found, `ClientBuildError` for a bad setting, from an argument or a variable."""
        self.options = self.Options.build(self.provider, options)
        if auth is not None and not isinstance(auth, Auth):
            raise TypeError(f"{self.provider}: auth must be a rig_sync.auth.Auth (e.g. BearerAuth, TokenAuth), "
                            f"not {type(auth).__name__}")
        for name, value in (("api_key", api_key), ("base_url", base_url)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{self.provider}: {name} must be a string, not {type(value).__name__}")
        api_key, base_url, auth = self.resolve_access(api_key, base_url, auth)
        if timeout is None:
            timeout = _env_number(self.env_timeout, float, "a number of seconds above 0, e.g. 30") or Timeout()
        if max_retries is None and retry is None:
            max_retries = _env_number(self.env_max_retries, int, "a whole number of 0 or more, e.g. 2")
        if self.requires_api_key and auth is None and not (api_key and api_key.strip()):
            raise MissingAPIKeyError(
                f"{self.provider}: no API key. Pass one, e.g. {self.provider}.Client('…'), "
                f"or set {' or '.join(self.env_api_key)} in the environment"
            )
        key = api_key.strip() if api_key else ""
        if key and not (key.isascii() and key.isprintable() and " " not in key):
            # Refused here, without echoing the key: `requests` would quote the header in its error.
            raise ClientBuildError(f"{self.provider}: the API key contains spaces, control or non-ASCII "
                                   "characters; check how it was copied")
        _check_headers(headers)
        _check_session(session)
        _check_retry(retry)
        _check_pool_size(pool_size)
        _check_verify(verify)
        _check_limiter(rate_limiter)
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        from ..http import Transport  # requests and urllib3 load with the first client, not with the module

        self.transport = Transport(
            self.provider,
            base_url,
            auth=auth if auth is not None else self.make_auth(key) if key else None,
            headers={**self.extra_headers(), **(headers or {})},
            timeout=timeout,
            retry=policy,
            pool_size=pool_size,
            session=session,
            verify=verify,
            rate_limiter=rate_limiter,
            max_response_bytes=max_response_bytes,
            expected_prefix=urlsplit(self.default_base_url).path,  # a 404 without it says so
            conventions=self.conventions,
        )

    # --- what a provider overrides ------------------------------------------------------------

    def make_auth(self, api_key: str) -> Auth:
        """How the key goes on each request (default: `Authorization: Bearer <key>`)."""
        return BearerAuth(api_key)

    def extra_headers(self) -> dict[str, str]:
        """Fixed headers every request of this provider carries (e.g. an API version)."""
        return {}

    def resolve_access(self, api_key: str | None, base_url: str | None, auth: Auth | None) -> Access:
        """The key, base URL and auth the client sends with, from its arguments, its `options` and
        the environment. The default: an API key or `auth=` (not both), else the first of
        `env_api_key` set; `base_url`, else the first of `env_base_url`, else `default_base_url`.
        A provider with other credentials (a token, a signer) or URLs built from options overrides it."""
        if auth is not None and api_key is not None:
            raise ClientBuildError(f"{self.provider}: pass an API key or auth=, not both")
        if auth is None and api_key is None:
            api_key = env_value(self.env_api_key)
        if base_url is None:
            base_url = env_value(self.env_base_url)
        return Access(api_key, self.default_base_url if base_url is None else base_url, auth)  # "" stays an error

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_env(cls: type[C]) -> C:
        """A client from the provider's environment variables alone: the same as `Client()`."""
        return cls()

    @classmethod
    def env_variables(cls) -> tuple[str, ...]:
        """Every environment variable this client reads when it is built."""
        return tuple(dict.fromkeys(filter(None, (*cls.env_api_key, *cls.env_base_url, *cls.env_options,
                                                 cls.env_timeout, cls.env_max_retries))))

    @classmethod
    def from_value(cls: type[C], value: ProviderValue) -> C:
        """A client from a `ProviderValue` (used by `DynClientBuilder.build_from_value`)."""
        if isinstance(value, str):
            value = ProviderValue(value)
        if not isinstance(value, ProviderValue):
            raise TypeError(f"from_value takes a ProviderValue (or an API key string), not {type(value).__name__}")
        return cls(value.api_key, base_url=value.base_url, **dict(value.options))

    @classmethod
    def builder(cls: type[C], api_key: str | None = None) -> ClientBuilder[C]:
        return cls.Builder(api_key)

    # --- capabilities ---------------------------------------------------------------------------

    @classmethod
    def capabilities(cls) -> list[str]:
        """The capability names this client class has, in the table's order."""
        return capabilities.claimed(cls)

    def as_capability(self, capability: str) -> Any:
        """This client if it has `capability` ("rerank" or `Capability.RERANK`), else None."""
        return self if isinstance(self, capabilities.row(capability).mixin) else None

    def as_completion(self) -> CompletionClient | None:
        view: CompletionClient | None = self.as_capability(Capability.COMPLETION)
        return view

    def as_embeddings(self) -> EmbeddingsClient | None:
        view: EmbeddingsClient | None = self.as_capability(Capability.EMBEDDINGS)
        return view

    def as_transcription(self) -> TranscriptionClient | None:
        view: TranscriptionClient | None = self.as_capability(Capability.TRANSCRIPTION)
        return view

    def as_image_generation(self) -> ImageGenerationClient | None:
        view: ImageGenerationClient | None = self.as_capability(Capability.IMAGE_GENERATION)
        return view

    def as_audio_generation(self) -> AudioGenerationClient | None:
        view: AudioGenerationClient | None = self.as_capability(Capability.AUDIO_GENERATION)
        return view

    def as_rerank(self) -> RerankClient | None:
        view: RerankClient | None = self.as_capability(Capability.RERANK)
        return view

    def as_list_models(self) -> ModelListingClient | None:
        view: ModelListingClient | None = self.as_capability(Capability.LIST_MODELS)
        return view

    def as_batch_jobs(self) -> BatchJobsClient | None:
        view: BatchJobsClient | None = self.as_capability(Capability.BATCH_JOBS)
        return view

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    def close(self) -> None:
        """Close every connection the client opened (also on leaving `with client:`).

        Idle connections are closed at once. One in use is cut off: a call in flight on another
        thread, a stream still open and a call waiting for a pooled connection each raise
        `APIConnectionError` ("the client was closed"); a cut-off stream's socket is closed when
        it is read or closed. Closing is not final: a later call opens new connections, so a
        client shared by several parts of a program keeps working for the others."""
        self.transport.close()

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise AttributeError(
                f"{self.provider}.Client is immutable once built (it is shared across threads); "
                f"build another with Client.builder(...) instead of setting {name!r}"
            )
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_frozen"):
            raise AttributeError(f"{self.provider}.Client is immutable once built; cannot delete {name!r}")
        super().__delattr__(name)

    def __repr__(self) -> str:
        from ..http import shown_url

        return f"{self.provider}.Client(base_url={shown_url(self.base_url)!r})"  # a query token masked


def _check_headers(headers: Mapping[str, str] | None) -> None:
    """Header names and values must be strings; `requests` would only say so on the first call."""
    if headers is None:
        return
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping of str to str, not {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header {name!r} must map a string to a string, not to {type(value).__name__}")
        if "\n" in name + value or "\r" in name + value:
            raise ValueError(f"header {name!r} contains a line break")


# Checked when the client is built (and by the builder's setters): `requests` would only fail at
# the first request, and a falsy `verify` (0, None, "") would silently turn TLS checks off.


def _check_session(session: object) -> None:
    import requests

    if session is not None and not isinstance(session, requests.Session):
        raise TypeError(f"session must be a requests.Session, not {type(session).__name__}")


def _check_retry(retry: object) -> None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a rig_sync.http.RetryPolicy, not {type(retry).__name__}")


def _check_pool_size(pool_size: object) -> None:
    whole(pool_size, "pool_size", minimum=1)


def _check_verify(verify: object) -> None:
    if not isinstance(verify, (bool, str)):
        raise TypeError(f"verify must be True, False or a CA bundle path, not {type(verify).__name__}")
    if isinstance(verify, str) and not verify.strip():
        raise ValueError("verify must be True, False or a CA bundle path, not an empty string")


def _check_limiter(limiter: object) -> None:
    if limiter is not None and not (callable(getattr(limiter, "acquire", None))
                                    and callable(getattr(limiter, "observe", None))):
        raise TypeError("rate_limiter needs acquire() and observe() methods (e.g. rig_sync.ratelimit.RateLimiter), "
                        f"not {type(limiter).__name__}")


N = TypeVar("N", int, float)


def _env_number(name: str, kind: type[N], wanted: str) -> N | None:
    """The number in variable `name`, or None if it is unset; anything but `wanted` is refused
    here, naming the variable, rather than surfacing later as a puzzling request failure."""
    raw = env_value((name,)) if name else None
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0 or (kind is float and value == 0):
        raise ClientBuildError(f"{name}={raw!r} in the environment is not {wanted}; fix or unset it")
    return value


class ClientBuilder(Generic[C]):
    """`openai.ClientBuilder("sk-…").base_url(…).timeout(30).max_retries(3).build()`: `build()`
    returns the provider's client class (`ClientBuilder[openai.Client]`)."""

    client_class: type[C]

    def __init__(self, api_key: str | None = None) -> None:
        self._api_key = api_key
        self._kwargs: dict[str, Any] = {}

    def api_key(self, api_key: str) -> ClientBuilder[C]:
        if not isinstance(api_key, str):
            raise TypeError(f"api_key must be a string, not {type(api_key).__name__}")
        self._api_key = api_key
        return self

    def base_url(self, base_url: str) -> ClientBuilder[C]:
        self._kwargs["base_url"] = base_url
        return self

    def custom_client(self, session: requests.Session) -> ClientBuilder[C]:
        """Use your own `requests.Session` (its proxies, certs, adapters are kept)."""
        if session is None:
            raise TypeError("custom_client takes a requests.Session, not None")
        _check_session(session)
        self._kwargs["session"] = session
        return self

    def timeout(self, timeout: Timeout | float | tuple[float, float]) -> ClientBuilder[C]:
        self._kwargs["timeout"] = Timeout.of(timeout)
        return self

    def max_retries(self, max_retries: int) -> ClientBuilder[C]:
        self._kwargs["max_retries"] = whole(max_retries, "max_retries")
        return self

    def retry(self, policy: RetryPolicy) -> ClientBuilder[C]:
        _check_retry(policy)
        self._kwargs["retry"] = policy
        return self

    def headers(self, headers: Mapping[str, str]) -> ClientBuilder[C]:
        if headers is None:
            raise TypeError("headers must be a mapping of str to str, not None")
        _check_headers(headers)
        self._kwargs["headers"] = {**self._kwargs.get("headers", {}), **headers}
        return self

    def pool_size(self, pool_size: int) -> ClientBuilder[C]:
        """Most connections kept open at once; size it to the threads that share the client."""
        _check_pool_size(pool_size)
        self._kwargs["pool_size"] = pool_size
        return self

    def rate_limit(self, limiter: RateLimiterLike) -> ClientBuilder[C]:
        """Pass every request of the client through `limiter` (e.g. `rig_sync.ratelimit.RateLimiter`)."""
        _check_limiter(limiter)
        self._kwargs["rate_limiter"] = limiter
        return self

    def max_response_bytes(self, limit: int) -> ClientBuilder[C]:
        """Largest answer read whole, once decoded (default `rig_sync.http.MAX_RESPONSE_BYTES`, 64 MiB)."""
        self._kwargs["max_response_bytes"] = whole(limit, "max_response_bytes", minimum=1)
        return self

    def auth(self, auth: Auth) -> ClientBuilder[C]:
        """Credentials added to each request in place of the API key (see `rig_sync.auth`)."""
        if not isinstance(auth, Auth):
            raise TypeError("auth must be a rig_sync.auth.Auth (e.g. BearerAuth, TokenAuth), "
                            f"not {type(auth).__name__}")
        self._kwargs["auth"] = auth
        return self

    def verify(self, verify: bool | str) -> ClientBuilder[C]:
        """TLS verification: True (default), a CA bundle path, or False (logs a warning)."""
        _check_verify(verify)
        self._kwargs["verify"] = verify
        return self

    def option(self, name: str, value: Any) -> ClientBuilder[C]:
        """A provider-specific option (e.g. Azure's `api_version`)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"an option name must be a keyword name (str), not {name!r}")
        self._kwargs[name] = value
        return self

    def build(self) -> C:
        return self.client_class(self._api_key, **self._kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(sorted(self._kwargs))})"
