"""Shared machinery for provider wire formats: one cattrs converter per provider, and a decode
step that turns any structuring failure into a `ResponseDecodeError` naming provider and field.

Unknown response fields are ignored (providers add fields all the time); `None` fields are left
out of request bodies, so a request carries only what the caller set.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from .errors import ResponseDecodeError

__all__ = ["make_converter", "decode", "encode"]

T = TypeVar("T")


def make_converter() -> cattrs.Converter:
    """A converter for one provider: tolerant of extra keys; request fields left at None are
    omitted, while fields with real defaults (`type: str = "function"`) are always sent."""
    converter = cattrs.Converter(forbid_extra_keys=False)

    def unstructure_fn(cls: type[Any]) -> Any:
        overrides = {f.name: override(omit_if_default=True) for f in attrs.fields(cls) if f.default is None}
        return make_dict_unstructure_fn(cls, converter, **overrides)

    converter.register_unstructure_hook_factory(attrs.has, unstructure_fn)
    return converter


def decode(converter: cattrs.Converter, data: Any, cls: type[T], provider: str) -> T:
    """`data` structured as `cls`, or `ResponseDecodeError` saying which field was wrong."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        detail = _first_problem(exc)
        message = f"unexpected {cls.__name__} from {provider}: {detail}"
        if isinstance(data, dict) and "error" in data:
            error = data["error"]
            said = error.get("message") if isinstance(error, dict) else error
            message = f"{provider} answered with an error instead of a {cls.__name__}: {said}"
        field = detail.rpartition(" @ ")[2] if " @ " in detail else None
        raise ResponseDecodeError(message, provider=provider, field=field, body=data) from None


def encode(converter: cattrs.Converter, value: Any) -> Any:
    """The JSON-ready form of a wire request object."""
    return converter.unstructure(value)


def _first_problem(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        problems = cattrs.transform_error(exc, path="$")
        return problems[0] if problems else str(exc)
    return f"{type(exc).__name__}: {exc}"
