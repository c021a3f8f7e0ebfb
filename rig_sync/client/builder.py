"""`DynClientBuilder`: pick a provider by name at run time.

Providers join the registry three ways: by being a module in `rig_sync.providers` (found by
listing the package, not by importing it); by a package of their own that declares an entry
point in the `rig_sync.providers` group (`acme = acme_rig:Client`, or a module holding `Client`),
as simonw/llm's plug-ins do; or through `register(ClientFactory(...))`. A provider is imported on
first use, and its client is built once and cached: one connection pool per provider, shared by
every model the builder hands out. Safe to use from many threads.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import pkgutil
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ClientBuildError, FactoryError, InvalidIdString, RigError, UnknownProvider, UnsupportedFeature
from . import ProviderClient, ProviderValue, capabilities
from .capabilities import CapabilityRow

if TYPE_CHECKING:
    from ..agent import AgentBuilder
    from ..audio_generation import AudioGenerationModel
    from ..completion import CompletionModel
    from ..embeddings import EmbeddingModel
    from ..image_generation import ImageGenerationModel
    from ..rerank import RerankModel
    from ..transcription import TranscriptionModel

__all__ = ["ClientFactory", "DynClientBuilder", "ProviderModelId", "PLUGIN_GROUP", "builtin_provider_names",
           "load_provider", "plugin_provider_names", "provider_names", "provider_env_variables", "shared_registry",
           "split_model_id", "target"]

# The entry-point group a provider published as its own package declares itself in.
PLUGIN_GROUP = "rig_sync.providers"

log = logging.getLogger("rig_sync.client")


@attrs.frozen
class ClientFactory:
    """How to build one provider's client: from the environment, or from a `ProviderValue`."""

    name: str = attrs.field()
    from_env_fn: Callable[[], Any] = attrs.field(validator=attrs.validators.is_callable())
    from_value_fn: Callable[[ProviderValue], Any] = attrs.field(validator=attrs.validators.is_callable())

    @name.validator
    def _check_name(self, _: Any, name: str) -> None:
        # The name is the part of a "provider:model" id before the first colon.
        if not isinstance(name, str) or not name or name != name.strip() or ":" in name:
            raise ValueError(f"a provider name must be a non-empty string without ':' or spaces, not {name!r}")


def split_model_id(id_string: object) -> tuple[str, str]:
    """`"openai:gpt-4o"` -> `("openai", "gpt-4o")`: split at the first colon (a model may hold more,
    as in `ollama:llama3:8b`), spaces around either part dropped. Raises `InvalidIdString` for
    anything else; whether the provider exists is the registry's question, not this one's."""
    if not isinstance(id_string, str):
        raise InvalidIdString(f"a model id must be a 'provider:model' string, not {type(id_string).__name__}")
    provider, sep, model = (part.strip() for part in id_string.partition(":"))
    if not sep or not provider or not model:
        raise InvalidIdString(f"model id {id_string!r} must look like 'provider:model', e.g. 'openai:gpt-4o'")
    if not provider.replace("_", "").replace("-", "").isalnum():
        raise InvalidIdString(f"model id {id_string!r}: the provider part {provider!r} is not a provider name")
    if any(ch.isspace() or not ch.isprintable() for ch in model):
        raise InvalidIdString(f"model id {id_string!r}: the model name {model!r} holds spaces or control characters")
    return provider, model


def builtin_provider_names() -> list[str]:
    """Names of the provider modules shipped in `rig_sync.providers` (none is imported)."""
    from .. import providers

    return sorted(m.name for m in pkgutil.iter_modules(providers.__path__) if not m.name.startswith("_"))


@functools.lru_cache(maxsize=1)
def _plugins() -> dict[str, Any]:
    """The entry points of installed plug-in providers by name (read once: listing every installed
    distribution's metadata takes a while). A plug-in named like a built-in provider is ignored."""
    from importlib.metadata import entry_points

    builtins = set(builtin_provider_names())
    found: dict[str, Any] = {}
    for point in entry_points(group=PLUGIN_GROUP):
        if point.name in builtins:
            log.warning("the plug-in provider %r (%s) is ignored: a built-in provider has that name",
                        point.name, point.value)
        else:
            found.setdefault(point.name, point)
    return found


def plugin_provider_names() -> list[str]:
    """Names of the installed plug-in providers (entry points in the `rig_sync.providers` group)."""
    return sorted(_plugins())


def provider_names() -> list[str]:
    """Every provider a `DynClientBuilder` knows without `register`: built-in, then plug-in ones."""
    return [*builtin_provider_names(), *plugin_provider_names()]


def load_provider(name: str) -> type[ProviderClient]:
    """The `Client` class of a provider: `rig_sync.providers.<name>`, or a plug-in's entry point
    (a `ProviderClient` subclass, or a module holding one as `Client`)."""
    point = _plugins().get(name) if name not in builtin_provider_names() else None
    if point is None:
        module = importlib.import_module(f"rig_sync.providers.{name}")
        client_cls: type[ProviderClient] = module.Client
        return client_cls
    try:
        loaded = point.load()
    except Exception as exc:  # the plug-in's own import failed: say which one
        raise ClientBuildError(f"the plug-in provider {name!r} ({point.value}) failed to import: "
                               f"{type(exc).__name__}: {exc}") from exc
    cls = getattr(loaded, "Client", loaded)
    if not (isinstance(cls, type) and issubclass(cls, ProviderClient)):
        raise ClientBuildError(f"the plug-in provider {name!r} ({point.value}) is not a rig_sync ProviderClient "
                               "subclass (nor a module with one named Client)")
    return cls


def provider_env_variables() -> list[str]:
    """Every environment variable a built-in provider's client reads (imports every provider)."""
    return sorted({name for provider in builtin_provider_names() for name in load_provider(provider).env_variables()})


def _builtin_factory(name: str) -> ClientFactory:
    return ClientFactory(
        name,
        lambda: load_provider(name).from_env(),
        lambda value: load_provider(name).from_value(value),
    )


@attrs.frozen(repr=False)
class ProviderModelId:
    """A `provider:model` pair from `DynClientBuilder.id`, ready to become any model (each method
    raises `UnsupportedFeature` where the provider lacks that capability)."""

    builder: DynClientBuilder
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"

    def __repr__(self) -> str:
        return f"ProviderModelId({str(self)!r})"

    # One per `DynClientBuilder` model method (each row's `handed_out`), on this provider and model.

    def for_capability(self, capability: str) -> Any:
        """The model of any capability in the table ("rerank" or `Capability.RERANK`)."""
        return self.builder.model(capability, self.provider, self.model)

    def completion(self) -> CompletionModel:
        return self.builder.completion(self.provider, self.model)

    def agent(self) -> AgentBuilder:
        return self.builder.agent(self.provider, self.model)

    def embeddings(self) -> EmbeddingModel:
        return self.builder.embeddings(self.provider, self.model)

    def transcription(self) -> TranscriptionModel:
        return self.builder.transcription(self.provider, self.model)

    def image_generation(self) -> ImageGenerationModel:
        return self.builder.image_generation(self.provider, self.model)

    def audio_generation(self) -> AudioGenerationModel:
        return self.builder.audio_generation(self.provider, self.model)

    def rerank(self) -> RerankModel:
        return self.builder.rerank(self.provider, self.model)


class DynClientBuilder:
    """Registry of providers by name; builds (and caches) clients and hands out models."""

    def __init__(self, *, include_builtins: bool = True) -> None:
        self._lock = threading.RLock()
        self._factories: dict[str, ClientFactory] = {}
        self._clients: dict[Hashable, Any] = {}
        self._building: dict[Hashable, threading.Lock] = {}  # one lock per client being built
        self._builtins: dict[str, ClientFactory] = {}  # those still registered answer capability questions early
        # Plug-ins are looked for only when a name is not built in, or all names are listed: reading
        # every installed package's metadata costs tens of milliseconds.
        self._plugins_pending = include_builtins
        if include_builtins:
            for name in builtin_provider_names():
                self._factories[name] = self._builtins[name] = _builtin_factory(name)

    def _add_plugins(self) -> None:
        with self._lock:
            if self._plugins_pending:
                self._plugins_pending = False
                for name in plugin_provider_names():
                    if name not in self._factories:  # one registered by hand first keeps its place
                        self._factories[name] = self._builtins[name] = _builtin_factory(name)

    # --- registry -------------------------------------------------------------------------------

    def register(self, factory: ClientFactory) -> DynClientBuilder:
        """Add (or replace) a provider; its cached client, if any, is dropped."""
        if not isinstance(factory, ClientFactory):
            raise TypeError(f"register takes a ClientFactory, not {type(factory).__name__}")
        with self._lock:
            self._factories[factory.name] = factory
            stale = [k for k in self._clients if k == factory.name or (isinstance(k, tuple) and k[0] == factory.name)]
            for key in stale:
                del self._clients[key]
        return self

    def register_all(self, factories: list[ClientFactory]) -> DynClientBuilder:
        for factory in factories:
            self.register(factory)
        return self

    def clear(self) -> None:
        """Close and forget every cached client: the next call builds afresh, reading the
        environment again (e.g. after a key was changed in a notebook)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def providers(self) -> list[str]:
        self._add_plugins()
        with self._lock:
            return sorted(self._factories)

    def factory(self, provider: str) -> ClientFactory:
        if not isinstance(provider, str):
            raise TypeError(f"provider name must be a string, not {type(provider).__name__}")
        if self._plugins_pending and provider not in self._factories:
            self._add_plugins()
        with self._lock:
            found = self._factories.get(provider)
            if found is None:  # "OpenAI" means "openai", unless the case is all that tells two apart
                folded = [f for name, f in self._factories.items() if name.casefold() == provider.strip().casefold()]
                found = folded[0] if len(folded) == 1 else None
            if found is None:
                close = difflib.get_close_matches(provider, self._factories, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise UnknownProvider(
                    f"no provider named {provider!r}.{hint} Known: {', '.join(sorted(self._factories))}"
                )
            return found

    # --- clients --------------------------------------------------------------------------------

    def __repr__(self) -> str:
        self._add_plugins()
        with self._lock:
            known, cached = sorted(self._factories), list(self._clients)
        # A client built from a ProviderValue is shown by provider only: the value may hold a key.
        clients = [f"{key[0]} (from a value)" if isinstance(key, tuple) else str(key) for key in cached]
        return f"DynClientBuilder(providers=[{', '.join(known)}], clients=[{', '.join(clients)}])"

    def build(self, provider: str) -> Any:
        """The provider's client from its environment variables, built once and cached."""
        return self._cached(provider, None, lambda f: f.from_env_fn())

    def build_from_value(self, provider: str, value: ProviderValue | str) -> Any:
        """The provider's client from explicit settings (cached per distinct value)."""
        if isinstance(value, str):
            value = ProviderValue(value)
        if not isinstance(value, ProviderValue):
            raise TypeError(f"build_from_value takes a ProviderValue or an API key, not {type(value).__name__}")
        return self._cached(provider, value, lambda f: f.from_value_fn(value))

    def _cached(self, provider: str, value: ProviderValue | None, make: Callable[[ClientFactory], Any]) -> Any:
        # Built once per provider (and value); a slow build of one provider never holds up another's.
        factory = self.factory(provider)
        provider = factory.name  # as registered, whatever case it was asked for in
        key: Hashable = provider if value is None else (provider, value)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                client = self._clients.get(key)
            if client is None:
                client = self._make(factory, make)
                with self._lock:
                    if self._factories.get(provider) is factory:  # not re-registered meanwhile
                        self._clients[key] = client
                    self._building.pop(key, None)
            return client

    @staticmethod
    def _make(factory: ClientFactory, make: Callable[[ClientFactory], Any]) -> Any:
        try:
            client = make(factory)
        except RigError:
            raise
        except Exception as exc:  # a factory's own bug: say whose
            raise FactoryError(f"building the {factory.name!r} client failed: {type(exc).__name__}: {exc}") from exc
        if client is None:
            raise FactoryError(f"the {factory.name!r} factory returned None instead of a client")
        return client

    def _capable(self, provider: str, found: CapabilityRow, value: ProviderValue | None) -> Any:
        factory = self.factory(provider)
        # A built-in provider's class says what it can do: no need for its key to learn it lacks this.
        if (self._builtins.get(factory.name) is factory
                and not issubclass(load_provider(factory.name), found.mixin)):
            raise self._unsupported(provider, found)
        client = self.build(provider) if value is None else self.build_from_value(provider, value)
        if not isinstance(client, found.mixin):
            raise self._unsupported(provider, found)
        return client

    def _unsupported(self, provider: str, found: CapabilityRow) -> UnsupportedFeature:
        able = [p for p in self.providers() if _claims(self._factories[p], found)]
        return UnsupportedFeature(f"provider {provider!r} does not support {found.title}. "
                                  f"Providers that do: {', '.join(able) or 'none registered'}")

    def _hand_out(self, method: str, provider: str, model: str | None, value: ProviderValue | None) -> Any:
        """What the builder method `method` hands out: its row's client method, called with the model."""
        found, client_method = capabilities.handed_out_by(method)
        provider, model = target(provider, model)
        return getattr(self._capable(provider, found, value), client_method)(model)

    # --- models ---------------------------------------------------------------------------------

    # Each takes `("openai", "gpt-4o")` or one id, `("openai:gpt-4o")`. The client is built from the
    # environment (or from `value`) on first use and cached. Raises `UnknownProvider` (with a
    # did-you-mean hint), `InvalidIdString` for a malformed id, `UnsupportedFeature` where the
    # provider lacks the capability, and `MissingAPIKeyError` / `ClientBuildError` if its client
    # cannot be built. Each is its row's `handed_out` entry (`rig_sync.client.capabilities.TABLE`).

    def model(self, capability: str, provider: str, model: str | None = None,
              value: ProviderValue | None = None) -> Any:
        """The model of any capability in the table: `model("rerank", "voyageai:rerank-2")`."""
        found = capabilities.row(capability)
        if not found.handed_out:
            raise ValueError(f"{found.title} hands out no model: ask the client, e.g. "
                             f"DynClientBuilder().build(provider).{found.method}()")
        return self._hand_out(next(iter(found.handed_out)), provider, model, value)

    def completion(self, provider: str, model: str | None = None,
                   value: ProviderValue | None = None) -> CompletionModel:
        """A chat model: `completion("openai", "gpt-4o")` or `completion("openai:gpt-4o")`."""
        made: CompletionModel = self._hand_out("completion", provider, model, value)
        return made

    def agent(self, provider: str, model: str | None = None, value: ProviderValue | None = None) -> AgentBuilder:
        """An `AgentBuilder` on a chat model (call `.build()` on it): `agent("openai:gpt-4o")`."""
        made: AgentBuilder = self._hand_out("agent", provider, model, value)
        return made

    def embeddings(self, provider: str, model: str | None = None,
                   value: ProviderValue | None = None) -> EmbeddingModel:
        """An embedding model: `embeddings("openai:text-embedding-3-small")`."""
        made: EmbeddingModel = self._hand_out("embeddings", provider, model, value)
        return made

    def transcription(self, provider: str, model: str | None = None,
                      value: ProviderValue | None = None) -> TranscriptionModel:
        """A speech-to-text model: `transcription("openai:whisper-1")`."""
        made: TranscriptionModel = self._hand_out("transcription", provider, model, value)
        return made

    def image_generation(self, provider: str, model: str | None = None,
                         value: ProviderValue | None = None) -> ImageGenerationModel:
        """A text-to-image model: `image_generation("openai:gpt-image-1")`."""
        made: ImageGenerationModel = self._hand_out("image_generation", provider, model, value)
        return made

    def audio_generation(self, provider: str, model: str | None = None,
                         value: ProviderValue | None = None) -> AudioGenerationModel:
        """A text-to-speech model: `audio_generation("openai:tts-1")`."""
        made: AudioGenerationModel = self._hand_out("audio_generation", provider, model, value)
        return made

    def rerank(self, provider: str, model: str | None = None, value: ProviderValue | None = None) -> RerankModel:
        """A reranker: `rerank("voyageai:rerank-2")`, `rerank("cohere", "rerank-v3.5")`."""
        made: RerankModel = self._hand_out("rerank", provider, model, value)
        return made

    def id(self, id_string: str) -> ProviderModelId:
        """Parse `"provider:model"` (the model may itself contain colons, e.g. `ollama:llama3:8b`)."""
        provider, model = split_model_id(id_string)
        return ProviderModelId(self, self.factory(provider).name, model)


def target(provider: str, model: str | None) -> tuple[str, str]:
    """`(provider, model)` as given, or split from a `provider:model` id when no model is given."""
    if model is None:
        if isinstance(provider, str) and ":" not in provider:
            raise InvalidIdString(f"no model given for {provider!r}: pass it too, e.g. ({provider!r}, 'model-name'), "
                                  f"or one id, e.g. '{provider.strip()}:model-name'")
        return split_model_id(provider)
    if not isinstance(model, str):
        raise TypeError(f"model name must be a string, not {type(model).__name__}")
    return provider, model


_shared_lock = threading.Lock()
_shared: DynClientBuilder | None = None


def shared_registry() -> DynClientBuilder:
    """The process-wide `DynClientBuilder` behind `rig_sync.complete/stream/embed` and
    `batch.fan_out`: created on first use (once, whichever thread gets there first), so every
    call shares its cached clients and their connection pools."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = DynClientBuilder()
    return _shared


def _claims(factory: ClientFactory, found: CapabilityRow) -> bool:
    """Whether a built-in provider's client class has the capability (user factories: unknown)."""
    try:
        from .. import providers  # noqa: F401

        if factory.name not in builtin_provider_names():
            return False
        return issubclass(load_provider(factory.name), found.mixin)
    except Exception:  # noqa: BLE001 - only a hint for an error message
        return False
