"""Shared machinery for provider wire formats: one cattrs converter per provider, and a decode
step that turns any structuring failure into a `ResponseDecodeError` naming provider and field.

Unknown response fields are ignored (providers add fields all the time); `None` fields are left
out of request bodies, so a request carries only what the caller set.

Usage is read tolerantly, for it is a side field of a paid answer: a token count (`Tokens`) that
is not a plausible one (negative, fractional, NaN, infinite, a string, or above `MAX_TOKENS`) reads
as None, "not reported" (as a missing one does), a cost that is no finite non-negative number
(`read_cost`) likewise, and a usage block of the wrong shape (a class marked `lenient`) as its defaults;
none of them fails the response.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import ResponseDecodeError, drops_hidden_context

__all__ = ["make_converter", "decode", "encode", "lenient", "Tokens", "read_cost", "MAX_TOKENS"]

T = TypeVar("T")

# A count or None ("not reported"): declare `x: Tokens = None`; `_structure_tokens` reads it.
Tokens = Annotated[int | None, "token count"]
MAX_TOKENS = 2**53 - 1  # JSON's safe integers; a larger count is garbage (1e30), not a count
_LENIENT: set[type[Any]] = set()  # wire classes marked `lenient`


def make_converter() -> cattrs.Converter:
    """A converter for one provider: tolerant of extra keys; request fields left at None are
    omitted, while fields with real defaults (`type: str = "function"`) are always sent."""
    # Without detailed validation cattrs generates lean code for the hot path (a stream decodes
    # one object per chunk); on failure `decode` re-runs a detailed copy to name the bad field.
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(bool, _structure_bool)  # bool is an int subclass: its own hook
    converter.register_structure_hook_func(lambda kind: kind == Tokens, _structure_tokens)
    converter.register_structure_hook_factory(lambda kind: isinstance(kind, type) and kind in _LENIENT,
                                             _lenient_hook)
    converter.register_structure_hook_factory(_is_optional, _optional_hook)

    def unstructure_fn(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {
            f.name: override(omit_if_default=True) for f in attrs.fields(cls) if f.default is None
        }
        return make_dict_unstructure_fn(cls, converter, _cattrs_include_init_false=True, **overrides)

    converter.register_unstructure_hook_factory(attrs.has, unstructure_fn)
    return converter


def _structure_str(value: Any, _: Any) -> str:
    if value.__class__ is str:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {type(value).__name__}")


def _structure_bool(value: Any, _: Any) -> bool:
    if value is True or value is False:
        return value
    raise ValueError(f"expected true or false, got {type(value).__name__}")


def _optional_hook(kind: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # cattrs re-dispatches `X | None` on every value; resolve X's hook once instead. Taking the
    # converter as an argument makes the detailed copy in `decode` resolve its own, detailed hook.
    (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    hook = converter.get_structure_hook(inner)
    return lambda value, _: None if value is None else hook(value, inner)


def _structure_int(value: Any, _: Any) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {type(value).__name__}")


def _structure_tokens(value: Any, _: Any) -> int | None:
    if value.__class__ is float and math.isfinite(value) and value.is_integer():
        value = int(value)  # some providers type counts as numbers: 18.0 occurs
    return value if value.__class__ is int and 0 <= value <= MAX_TOKENS else None


def read_cost(value: Any) -> float | None:
    """An amount of money the provider reported, or None when it is no finite non-negative number."""
    if value.__class__ in (int, float) and math.isfinite(value) and 0 <= value <= MAX_TOKENS:
        return float(value)
    return None


def lenient(cls: type[T]) -> type[T]:
    """Mark a wire class (every field defaulted) as a side part of an answer, such as its usage:
    a value of the wrong shape reads as `cls()` instead of failing the answer it came with."""
    _LENIENT.add(cls)
    return cls


def _lenient_hook(cls: type[T], converter: cattrs.Converter) -> Callable[[Any, Any], T]:
    structure = make_dict_structure_fn(cls, converter)

    def hook(value: Any, _: Any) -> T:
        if isinstance(value, dict):
            try:
                return structure(value, cls)
            except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError):
                pass
        return cls()

    return hook


def _is_optional(kind: Any) -> bool:
    args = typing.get_args(kind)
    return (typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 2
            and type(None) in args)


@drops_hidden_context
def decode(converter: cattrs.Converter, data: Any, cls: type[T], provider: str) -> T:
    """`data` structured as `cls`, or `ResponseDecodeError` saying which field was wrong."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # Too deep (a recursive wire type): the detailed rerun would recurse too, its path run on.
        deep = isinstance(exc, RecursionError)
        detail = "nested too deep to decode" if deep else _first_problem(exc, converter, data, cls)
        message = f"unexpected {cls.__name__} from {provider}: {detail}"
        if isinstance(data, dict) and "error" in data:
            error = data["error"]
            said = error.get("message") if isinstance(error, dict) else error
            message = f"{provider} answered with an error instead of a {cls.__name__}: {said}"
        field = detail.rpartition(" @ ")[2] if " @ " in detail else None
        raise ResponseDecodeError(message, provider=provider, field=field, body=data) from None


def encode(converter: cattrs.Converter, value: Any) -> dict[str, Any]:
    """The JSON-ready form of a wire request object (an attrs class, so a dict)."""
    body: dict[str, Any] = converter.unstructure(value)
    return body


def _first_problem(exc: BaseException, converter: cattrs.Converter, data: Any, cls: type[Any]) -> str:
    detailed = _DETAILED.get(id(converter))
    if detailed is None:
        detailed = _DETAILED[id(converter)] = converter.copy(detailed_validation=True)
    try:
        detailed.structure(data, cls)
    except cattrs.BaseValidationError as full:
        problems = cattrs.transform_error(full, path="$")
        if problems:
            return problems[0]
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        pass
    return f"{type(exc).__name__}: {exc}"


_DETAILED: dict[int, cattrs.Converter] = {}
