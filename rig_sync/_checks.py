"""Argument checks shared by every layer: whole numbers and numbers, where `True` is not 1.

Each returns the value it checked, so a setter reads `self._n = whole(n, "n", minimum=1)`. A value
of the wrong type raises `InvalidTypeError` (a `TypeError`, and a `ValueError` as every
`InvalidRequestError` is), one out of range `InvalidRequestError`; both name the argument.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from .errors import InvalidRequestError, InvalidTypeError

__all__ = ["is_whole", "is_number", "whole", "number"]


def is_whole(value: Any) -> TypeGuard[int]:
    """An `int` that is not a `bool`."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[int | float]:
    """An `int` or `float` that is not a `bool` (NaN and infinities included: check the range)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole(value: Any, what: str, *, minimum: int = 0) -> int:
    """`value`, a whole number of at least `minimum`."""
    wanted = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    if not is_whole(value):
        raise InvalidTypeError(f"{what} must be {wanted}, not {value!r:.60}")
    if value < minimum:
        raise InvalidRequestError(f"{what} must be {wanted}, not {value!r}")
    return int(value)


def number(value: Any, what: str, *, above: float | None = None, at_least: float | None = None,
           at_most: float | None = None, finite: bool = True) -> float:
    """`value`, a number (NaN never passes) within the bounds given."""
    if not is_number(value):
        raise InvalidTypeError(f"{what} must be a number, not {value!r:.60}")
    if math.isnan(value) or (finite and math.isinf(value)) or (above is not None and not value > above) \
            or (at_least is not None and value < at_least) or (at_most is not None and value > at_most):
        raise InvalidRequestError(f"{what} must be {_wanted(above, at_least, at_most)}, not {value!r}")
    return float(value)


def _wanted(above: float | None, at_least: float | None, at_most: float | None) -> str:
    if at_least is not None and at_most is not None:
        return f"a number from {at_least:g} to {at_most:g}"
    if above is not None:
        return "a positive number" if above == 0 else f"a number above {above:g}"
    if at_least is not None:
        return f"a number of at least {at_least:g}"
    return f"a number of at most {at_most:g}" if at_most is not None else "a finite number"
