"""Pipelines: small operations that compose into larger ones, run synchronously, fan out on threads.

    from rig_sync import pipeline

    rag = (pipeline.new()
           .parallel(pipeline.passthrough(), pipeline.lookup(index, 3))      # (question, hits)
           .map(lambda pair: f"{format_hits(pair[1])}\\n\\nQuestion: {pair[0]}")
           .prompt(agent)
           .build())
    rag.call("What is a flurbo?")                 # ops are also plain callables: rag("…")
    rag.batch_call(4, questions)                  # at most 4 at a time, answers in input order

Every op is an immutable `Op` with `call(x)`; builder methods return a new op, so partial pipelines
can be shared and reused. `build()` only returns the op (kept for Rig's spelling).

Errors. Ops raise, as Python code does. To treat failures as values instead (Rig's `TryOp`),
`.catch(*exception_types)` turns the pipeline so far into one that returns `Ok(value)` or
`Err(exception)`; the try-variants then work on those and short-circuit:

- `map_ok(fn)`:   Ok(v) -> Ok(fn(v));  an Err passes through, `fn` is not called.
- `and_then(fn)`: Ok(v) -> fn(v), which returns an Ok or Err; an Err passes through.
- `map_err(fn)`:  Err(e) -> Err(fn(e)); an Ok passes through.
- `or_else(fn)`:  Err(e) -> fn(e), which returns an Ok or Err (recovery); an Ok passes through.
- `unwrap()`:     Ok(v) -> v; Err(e) raises `e` (or `PipelineError` when `e` is not an exception).

An exception raised by a try-variant's own `fn` propagates like any bug; add another `.catch()`
after it to turn that into an `Err` too (`catch` passes Ok/Err values through unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, NoReturn, TypeVar

import attrs

from ._checks import whole
from .errors import RigError

__all__ = [
    "Op", "Ok", "Err", "Result", "PipelineError",
    "new", "map", "then", "passthrough", "parallel", "lookup", "prompt", "extract",
]

In = TypeVar("In")
Out = TypeVar("Out")
T = TypeVar("T")
E = TypeVar("E")


class PipelineError(RigError):
    """An `Err` holding a non-exception value was unwrapped; `.error` is that value."""

    def __init__(self, error: Any) -> None:
        super().__init__(f"pipeline result is Err({error!r:.200})")
        self.error = error


@attrs.frozen
class Ok(Generic[T]):
    """A successful result in a pipeline's try-lane."""

    value: T

    def is_ok(self) -> bool:
        return True

    def unwrap(self) -> T:
        return self.value


@attrs.frozen
class Err(Generic[E]):
    """A failed result in a pipeline's try-lane; usually holds the exception `catch` caught."""

    error: E

    def is_ok(self) -> bool:
        return False

    def unwrap(self) -> NoReturn:
        if isinstance(self.error, BaseException):
            raise self.error
        raise PipelineError(self.error)


Result = Ok[T] | Err[E]


def _positive(n: Any, what: str) -> int:
    return whole(n, what, minimum=1)


def _needs(obj: Any, method: str, role: str) -> None:
    if not callable(getattr(obj, method, None)):
        raise TypeError(f"{role} must have a {method}() method; got {type(obj).__name__}")


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


class Op(Generic[In, Out]):
    """One step of a pipeline. Subclasses implement `call`; everything else composes."""

    def call(self, value: In) -> Out:
        raise NotImplementedError

    def __call__(self, value: In) -> Out:
        return self.call(value)

    def batch_call(self, n: int, inputs: Iterable[In]) -> list[Out]:
        """`call` on every input, at most `n` at a time, results in input order.

        The first failure (in input order) is raised once the calls already running finish; calls
        not yet started are cancelled. Use `.catch().batch_call(...)` to get an Ok/Err per input.
        """
        _positive(n, "n")
        items = list(inputs)
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(n, len(items)), thread_name_prefix="rig-pipeline") as pool:
            futures = [pool.submit(self.call, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def build(self) -> Op[In, Out]:
        return self

    # composition

    def chain(self, op: Op[Out, T] | Callable[[Out], T]) -> Op[In, T]:
        """This op, then `op` (an Op or any one-argument callable) on its output."""
        return _Sequential.of(self, op if isinstance(op, Op) else _Map(op))

    def map(self, fn: Callable[[Out], T]) -> Op[In, T]:
        """Apply `fn` to the output."""
        return self.chain(_Map(fn))

    def then(self, fn: Callable[[Out], T]) -> Op[In, T]:
        """Same as `map` (Rig's `then` takes an async function; here every function is synchronous)."""
        return self.map(fn)

    def passthrough(self) -> Op[In, Out]:
        """The identity step: the output unchanged."""
        return self

    def parallel(self, *ops: Op[Out, Any] | Callable[[Out], Any]) -> Op[In, tuple[Any, ...]]:
        """Run `ops` on the same output concurrently (in threads); their results as a tuple, in order."""
        return self.chain(_Parallel(ops))

    def lookup(self, index: Any, n: int) -> Op[In, list[tuple[float, str, Any]]]:
        """`index.top_n(output, n)`: the `n` nearest documents as `(score, id, document)`."""
        _needs(index, "top_n", "index")
        _positive(n, "n")
        return self.chain(_Map(lambda query: index.top_n(query, n), f"lookup(n={n})"))

    def prompt(self, agent: Any) -> Op[In, str]:
        """`agent.prompt(output)`: the agent's reply text."""
        _needs(agent, "prompt", "agent")
        return self.chain(_Map(agent.prompt, "prompt"))

    def extract(self, extractor: Any) -> Op[In, Any]:
        """`extractor.extract(output)`: structured data pulled from the text."""
        _needs(extractor, "extract", "extractor")
        return self.chain(_Map(extractor.extract, "extract"))

    # the try-lane

    def catch(self, *exception_types: type[BaseException]) -> Op[In, Any]:
        """This op returning `Ok(output)`, or `Err(exception)` for the given types (default: Exception)."""
        types = exception_types or (Exception,)
        for t in types:
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                raise TypeError(f"catch() takes exception classes, not {t!r}")
        return _Catch(self, types)

    def map_ok(self, fn: Callable[[Any], Any]) -> Op[In, Any]:
        return self.chain(_TryStep("map_ok", fn, on_ok=True, returns_result=False))

    def and_then(self, fn: Callable[[Any], Any]) -> Op[In, Any]:
        return self.chain(_TryStep("and_then", fn, on_ok=True, returns_result=True))

    def map_err(self, fn: Callable[[Any], Any]) -> Op[In, Any]:
        return self.chain(_TryStep("map_err", fn, on_ok=False, returns_result=False))

    def or_else(self, fn: Callable[[Any], Any]) -> Op[In, Any]:
        return self.chain(_TryStep("or_else", fn, on_ok=False, returns_result=True))

    def unwrap(self) -> Op[In, Any]:
        return self.chain(_Map(lambda result: _as_result(result, "unwrap").unwrap(), "unwrap"))


class _Identity(Op[T, T]):
    def call(self, value: T) -> T:
        return value

    def chain(self, op: Op[T, Out] | Callable[[T], Out]) -> Op[T, Out]:
        return op if isinstance(op, Op) else _Map(op)

    def __repr__(self) -> str:
        return "passthrough"


class _Map(Op[In, Out]):
    def __init__(self, fn: Callable[[In], Out], name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"expected a callable, not {type(fn).__name__}")
        self.fn = fn
        self.name = name or _name(fn)

    def call(self, value: In) -> Out:
        return self.fn(value)

    def __repr__(self) -> str:
        return self.name


class _Sequential(Op[Any, Any]):
    """Steps run one after another; nested sequences are flattened so deep pipelines stay shallow."""

    def __init__(self, steps: tuple[Op[Any, Any], ...]) -> None:
        self.steps = steps

    @classmethod
    def of(cls, first: Op[Any, Any], second: Op[Any, Any]) -> Op[Any, Any]:
        parts = [step for op in (first, second) for step in (op.steps if isinstance(op, _Sequential) else (op,))]
        steps = tuple(step for step in parts if not isinstance(step, _Identity))
        return steps[0] if len(steps) == 1 else cls(steps)

    def call(self, value: Any) -> Any:
        for step in self.steps:
            value = step.call(value)
        return value

    def __repr__(self) -> str:
        return " -> ".join(repr(step) for step in self.steps)


class _Parallel(Op[Any, tuple[Any, ...]]):
    def __init__(self, ops: Iterable[Op[Any, Any] | Callable[[Any], Any]]) -> None:
        self.ops = tuple(op if isinstance(op, Op) else _Map(op) for op in ops)
        if not self.ops:
            raise ValueError("parallel() needs at least one op")

    def call(self, value: Any) -> tuple[Any, ...]:
        first, rest = self.ops[0], self.ops[1:]
        if not rest:
            return (first.call(value),)
        # The first op runs on the calling thread; the rest on a pool sized so none waits.
        # Leaving the `with` waits for all, so a failure is raised only after every op has finished,
        # and the one raised is the first in op order.
        with ThreadPoolExecutor(max_workers=len(rest), thread_name_prefix="rig-parallel") as pool:
            futures = [pool.submit(op.call, value) for op in rest]
            head = first.call(value)
        return (head, *(future.result() for future in futures))

    def __repr__(self) -> str:
        return f"parallel({', '.join(repr(op) for op in self.ops)})"


def _as_result(value: Any, where: str) -> Ok[Any] | Err[Any]:
    if isinstance(value, Ok | Err):
        return value
    raise TypeError(f"{where} works on Ok/Err values, got {type(value).__name__}; start the try-lane with .catch()")


class _Catch(Op[Any, Any]):
    def __init__(self, inner: Op[Any, Any], types: tuple[type[BaseException], ...]) -> None:
        self.inner = inner
        self.types = types

    def call(self, value: Any) -> Ok[Any] | Err[Any]:
        try:
            out = self.inner.call(value)
        except self.types as exc:
            return Err(exc)
        return out if isinstance(out, Ok | Err) else Ok(out)

    def __repr__(self) -> str:
        return f"({self.inner!r}).catch({', '.join(t.__name__ for t in self.types)})"


class _TryStep(Op[Any, Any]):
    """The four try-variants: act on one lane (Ok or Err), pass the other through untouched."""

    def __init__(self, name: str, fn: Callable[[Any], Any], *, on_ok: bool, returns_result: bool) -> None:
        if not callable(fn):
            raise TypeError(f"{name}() takes a callable, not {type(fn).__name__}")
        self.name, self.fn, self.on_ok, self.returns_result = name, fn, on_ok, returns_result

    def call(self, value: Any) -> Ok[Any] | Err[Any]:
        result = _as_result(value, self.name)
        if isinstance(result, Ok) != self.on_ok:
            return result
        out = self.fn(result.value if isinstance(result, Ok) else result.error)
        if self.returns_result:
            return _as_result(out, f"the function given to {self.name}()")
        return Ok(out) if self.on_ok else Err(out)

    def __repr__(self) -> str:
        return f"{self.name}({_name(self.fn)})"


# Module-level constructors, so ops can be written without a builder: pipeline.map(f).then(g).
_IDENTITY: Op[Any, Any] = _Identity()


def new() -> Op[Any, Any]:
    """An empty pipeline (the identity op) to build on: `new().map(f).lookup(index, 3).prompt(agent)`."""
    return _IDENTITY


def passthrough() -> Op[Any, Any]:
    """The identity op; useful in `parallel` to carry the input alongside other results."""
    return _IDENTITY


def map(fn: Callable[[Any], T]) -> Op[Any, T]:  # shadows the builtin on purpose: Rig's vocabulary
    return _IDENTITY.map(fn)


def then(fn: Callable[[Any], T]) -> Op[Any, T]:
    return _IDENTITY.then(fn)


def parallel(*ops: Op[Any, Any] | Callable[[Any], Any]) -> Op[Any, tuple[Any, ...]]:
    return _IDENTITY.parallel(*ops)


def lookup(index: Any, n: int) -> Op[Any, list[tuple[float, str, Any]]]:
    return _IDENTITY.lookup(index, n)


def prompt(agent: Any) -> Op[Any, str]:
    return _IDENTITY.prompt(agent)


def extract(extractor: Any) -> Op[Any, Any]:
    return _IDENTITY.extract(extractor)
