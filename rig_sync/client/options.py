"""A provider's own options, declared as a frozen attrs class whose fields name their variables.

    @attrs.frozen(kw_only=True)
    class Options(ProviderOptions):
        organization: str | None = option(env=("OPENAI_ORG_ID",))   # sent as OpenAI-Organization

    class Client(ProviderClient, ...):
        Options = Options                       # Client(key, organization="org-1")

`ProviderOptions.build` makes one from a client's keyword arguments with cattrs: an option left out
(or None) is read from the first of its variables set, else it keeps its default. Every value is
checked for its declared type (no silent `str(5)`), then by the field's validator; anything wrong
is a `ClientBuildError` naming the option, or the variable it came from. A secret option
(`option(secret=True)`) is left out of the repr.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..errors import ClientBuildError, OptionTypeError

__all__ = ["ProviderOptions", "option", "checked", "env_value"]

if TYPE_CHECKING:
    import cattrs

Opts = TypeVar("Opts", bound="ProviderOptions")


def env_value(names: Iterable[str]) -> str | None:
    """The value of the first of `names` set (to more than spaces) in the environment, stripped."""
    for name in names:
        value = os.environ.get(name)
        if value and value.strip():
            return value.strip()
    return None


def option(default: Any = None, *, env: tuple[str, ...] = (), secret: bool = False,
           validator: Callable[[Any, Any, Any], Any] | None = None) -> Any:
    """A field of a `ProviderOptions` class: its default, the variables read when it is not
    passed (the first set wins), and whether it is a secret (then kept out of the repr)."""
    return attrs.field(default=default, validator=validator, repr=not secret, metadata={"env": env})


class _Invalid(ValueError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name} {reason}")
        self.name, self.reason = name, reason


def checked(test: Callable[[Any], object], wanted: str) -> Callable[[Any, Any, Any], None]:
    """A validator: a value (other than None) that fails `test` is refused as not `wanted`."""
    def validate(_: Any, attribute: Any, value: Any) -> None:
        if value is not None and not test(value):
            raise _Invalid(attribute.name, f"must be {wanted}, not {value!r:.80}")
    return validate


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {type(value).__name__}")
    return value.strip()


def _names(value: Any, _: type) -> tuple[str, ...]:
    """A list of names: one string, a comma-separated string (from a variable), or a sequence."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise TypeError("must be a string or a list of strings")
    return tuple(item.strip() for item in value if item.strip())


@functools.cache
def _converter() -> cattrs.Converter:
    """Built with the first client (cattrs is not needed to import a provider)."""
    import cattrs

    converter = cattrs.Converter()
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook_func(lambda kind: kind == tuple[str, ...], _names)
    # A function (a token provider) or an object of a library's own type (credentials): kept as
    # given, and checked by the field's validator.
    converter.register_structure_hook_func(lambda kind: getattr(kind, "__origin__", kind) in (Callable, object),
                                           lambda value, _: value)
    return converter


@attrs.frozen(kw_only=True)
class ProviderOptions:
    """The options a provider's client takes beyond those every client has (none here).

    `given` holds the names passed as arguments (not read from the environment), for a client
    that treats an explicit value differently from a variable (e.g. a token that excludes a key)."""

    given: frozenset[str] = attrs.field(default=frozenset(), repr=False, eq=False)

    @classmethod
    def env_variables(cls) -> tuple[str, ...]:
        """Every variable an option is read from, in declaration order."""
        return tuple(name for field in attrs.fields(cls) for name in field.metadata.get("env", ()))

    @classmethod
    def build(cls: type[Opts], provider: str, arguments: Mapping[str, Any]) -> Opts:
        fields = {field.name: field for field in attrs.fields(cls) if field.name != "given"}
        unknown = sorted(set(arguments) - set(fields))
        if unknown:
            takes = f"; it takes {', '.join(fields)}" if fields else "; it takes none"
            raise OptionTypeError(f"{provider}.Client got unexpected options: {', '.join(unknown)}{takes}")
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name, field in fields.items():
            value = arguments.get(name)
            origin[name] = name
            if value is None:
                for variable in field.metadata.get("env", ()):
                    value = env_value((variable,))
                    if value is not None:
                        origin[name] = f"{variable} in the environment"
                        break
            if value is not None:
                values[name] = value
        given = frozenset(name for name in values if arguments.get(name) is not None)
        import cattrs

        try:
            return _converter().structure({**values, "given": given}, cls)
        except (_Invalid, cattrs.ClassValidationError) as exc:
            name, inner = _first_failure(exc)
            if isinstance(inner, _Invalid):  # a field's validator
                name, inner = inner.name, ValueError(inner.reason)
            where = origin.get(name, name) if name else "an option"
            kind = OptionTypeError if isinstance(inner, TypeError) else ClientBuildError
            raise kind(f"{provider}: {where} {inner}") from None


def _first_failure(exc: BaseException) -> tuple[str | None, BaseException]:
    """The option name and the error of the first failure in a cattrs error group."""
    import cattrs

    if isinstance(exc, cattrs.ClassValidationError):
        named, other = exc.group_exceptions()
        if named:
            inner, note = named[0]
            return getattr(note, "name", None), _first_failure(inner)[1]
        return None, _first_failure(other[0])[1] if other else exc
    return None, exc
