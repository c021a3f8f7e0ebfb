"""Tests for rig_sync.pipeline: composition, lookup/prompt/extract, parallel, batch_call, the try-lane."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from rig_sync import pipeline
from rig_sync.embeddings import Embedding
from rig_sync.pipeline import Err, Ok, Op, PipelineError
from rig_sync.vector_store import InMemoryVectorStore


class Gauge:
    """Counts how many calls are inside `track` at once; `wait_for(k)` holds callers until k are in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.cond = threading.Condition(self.lock)

    def track(self, value: Any, wait_for: int = 0) -> Any:
        with self.cond:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.cond.notify_all()
            # bounded wait: returns after 5 s at the latest, so a broken pool fails instead of hanging
            self.cond.wait_for(lambda: self.active >= wait_for or self.peak >= wait_for, timeout=5)
        with self.lock:
            self.active -= 1
        return value


# --- composition --------------------------------------------------------------------------------


def test_map_then_chain_compose_left_to_right() -> None:
    op = pipeline.new().map(str.strip).then(str.upper).chain(pipeline.map(lambda s: s + "!")).build()
    assert op.call("  hi ") == "HI!"
    assert op("  yo ") == "YO!"  # ops are callables
    assert isinstance(op, Op)


def test_module_level_ops_and_passthrough() -> None:
    assert pipeline.passthrough().call(5) == 5
    assert pipeline.new().passthrough().call("x") == "x"
    assert pipeline.map(len).then(lambda n: n * 2).call("abc") == 6
    assert pipeline.new().chain(len).call("abcd") == 4  # chain takes plain callables too


def test_ops_are_immutable_and_reusable() -> None:
    base = pipeline.map(lambda x: x + 1)
    double = base.map(lambda x: x * 2)
    square = base.map(lambda x: x * x)
    assert (base.call(1), double.call(1), square.call(3)) == (2, 4, 16)


def test_long_pipelines_are_flat() -> None:
    op = pipeline.new()
    for _ in range(1500):  # beyond the recursion limit
        op = op.map(lambda x: x + 1)
    assert op.call(0) == 1500
    assert "->" in repr(pipeline.map(len).then(str))


# --- lookup / prompt / extract (duck typed) ---------------------------------------------------


class TinyModel:
    provider = "fake"
    model = "tiny"
    max_documents = 8
    ndims = 2

    def embed_text(self, text: str) -> Embedding:
        return Embedding(text, [float(text.count("a")) + 0.1, float(text.count("b")) + 0.1])

    def embed_texts(self, texts: Sequence[str]) -> list[Embedding]:
        return [self.embed_text(t) for t in texts]


class EchoAgent:
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def prompt(self, text: str) -> str:
        self.prompts.append(text)
        return f"answer to <{text}>"


class WordCounter:
    def extract(self, text: str) -> dict[str, int]:
        return {"words": len(text.split())}


@pytest.fixture
def index() -> Any:
    model = TinyModel()
    store = InMemoryVectorStore.from_documents_with_ids(
        [(name, name, model.embed_text(name).vec) for name in ("aaa", "bbb", "aab")]
    )
    return store.index(model)


def test_rag_pipeline_with_lookup_prompt_extract(index: Any) -> None:
    agent = EchoAgent()
    rag = (
        pipeline.new()
        .parallel(pipeline.passthrough(), pipeline.lookup(index, 2))
        .map(lambda pair: f"{pair[0]} | context: {', '.join(doc for _, _, doc in pair[1])}")
        .prompt(agent)
        .extract(WordCounter())
        .build()
    )
    assert rag.call("aa") == {"words": 7}  # "answer to <aa | context: aaa, aab>"
    assert agent.prompts == ["aa | context: aaa, aab"]


def test_lookup_returns_scored_hits(index: Any) -> None:
    hits = pipeline.lookup(index, 1).call("bb")
    assert [(doc_id, doc) for _, doc_id, doc in hits] == [("bbb", "bbb")]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: pipeline.prompt(object()), "prompt"),
        (lambda: pipeline.extract("nope"), "extract"),
        (lambda: pipeline.lookup(object(), 3), "top_n"),
        (lambda: pipeline.map(42), "callable"),
        (lambda: pipeline.new().map_ok("x"), "callable"),
    ],
)
def test_ops_check_their_collaborators(make: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()


def test_lookup_needs_positive_n(index: Any) -> None:
    with pytest.raises(ValueError, match="n must be a positive integer"):
        pipeline.lookup(index, 0)


# --- parallel -----------------------------------------------------------------------------------


def test_parallel_returns_a_tuple_in_op_order() -> None:
    op = pipeline.parallel(pipeline.map(lambda x: x + 1), lambda x: x * 10, pipeline.passthrough())
    assert op.call(3) == (4, 30, 3)
    assert pipeline.parallel(len).call("ab") == (2,)


def test_parallel_runs_ops_concurrently() -> None:
    gauge = Gauge()
    op = pipeline.parallel(*[pipeline.map(lambda x: gauge.track(x, wait_for=3)) for _ in range(3)])
    assert op.call("v") == ("v", "v", "v")
    assert gauge.peak == 3


def test_parallel_raises_the_first_failure_after_all_finish() -> None:
    finished: list[str] = []

    def fail(tag: str) -> Any:
        def run(_: Any) -> Any:
            finished.append(tag)
            raise KeyError(tag)
        return run

    with pytest.raises(KeyError, match="first"):
        pipeline.parallel(lambda x: finished.append("ok"), fail("first"), fail("second")).call(1)
    assert sorted(finished) == ["first", "ok", "second"]


def test_parallel_needs_an_op() -> None:
    with pytest.raises(ValueError):
        pipeline.parallel()


# --- batch_call ---------------------------------------------------------------------------------


def test_batch_call_keeps_input_order_and_bounds_concurrency() -> None:
    gauge = Gauge()
    op = pipeline.map(lambda x: gauge.track(x, wait_for=3)).map(lambda x: x * x)
    assert op.batch_call(3, range(12)) == [x * x for x in range(12)]
    assert gauge.peak == 3  # 3 were in flight together, never more


def test_batch_call_with_one_worker_is_sequential() -> None:
    gauge = Gauge()
    assert pipeline.map(gauge.track).batch_call(1, ["a", "b"]) == ["a", "b"]
    assert gauge.peak == 1


def test_batch_call_edge_cases() -> None:
    assert pipeline.map(str).batch_call(4, []) == []
    for bad in (0, -2, 1.0, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            pipeline.map(str).batch_call(bad, [1])


def test_batch_call_raises_the_first_failure_in_input_order() -> None:
    def check(x: int) -> int:
        if x in (3, 7):
            raise ValueError(f"bad {x}")
        return x

    with pytest.raises(ValueError, match="bad 3"):
        pipeline.map(check).batch_call(2, range(10))
    # or, as values: one Ok/Err per input
    results = pipeline.map(check).catch(ValueError).batch_call(4, range(5))
    assert results[:3] == [Ok(0), Ok(1), Ok(2)] and results[4] == Ok(4)
    assert isinstance(results[3], Err) and str(results[3].error) == "bad 3"


# --- the try-lane -------------------------------------------------------------------------------


@pytest.fixture
def calls() -> Iterator[list[str]]:
    yield []


def test_catch_wraps_values_and_exceptions() -> None:
    op = pipeline.map(int).catch(ValueError)
    assert op.call("12") == Ok(12)
    result = op.call("x")
    assert isinstance(result, Err) and isinstance(result.error, ValueError)
    with pytest.raises(TypeError):  # not caught: only the listed types are
        op.call(None)
    assert pipeline.map(int).catch().call("nope").is_ok() is False


def test_ok_lane_short_circuits_on_err(calls: list[str]) -> None:
    op = (
        pipeline.map(int).catch()
        .map_ok(lambda n: calls.append("map_ok") or n * 2)
        .and_then(lambda n: calls.append("and_then") or (Ok(n) if n < 100 else Err("too big")))
        .map_ok(lambda n: calls.append("map_ok 2") or n + 1)
    )
    assert op.call("5") == Ok(11)
    assert calls == ["map_ok", "and_then", "map_ok 2"]
    calls.clear()
    assert op.call("60") == Err("too big")
    assert calls == ["map_ok", "and_then"]  # the second map_ok was skipped
    calls.clear()
    assert isinstance(op.call("x"), Err)
    assert calls == []  # nothing ran after the failed parse


def test_err_lane_map_err_and_or_else(calls: list[str]) -> None:
    op = (
        pipeline.map(int).catch()
        .map_err(lambda e: calls.append("map_err") or type(e).__name__)
        .or_else(lambda name: calls.append("or_else") or (Ok(-1) if name == "ValueError" else Err(name)))
    )
    assert op.call("x") == Ok(-1)
    assert calls == ["map_err", "or_else"]
    calls.clear()
    assert op.call("4") == Ok(4)
    assert calls == []  # an Ok skips the error lane
    assert op.call(None) == Err("TypeError")


def test_unwrap_returns_or_raises() -> None:
    op = pipeline.map(int).catch().map_ok(lambda n: n + 1).unwrap()
    assert op.call("1") == 2
    with pytest.raises(ValueError):
        op.call("x")
    with pytest.raises(PipelineError, match="'nope'") as info:
        pipeline.map(lambda _: Err("nope")).unwrap().call(1)
    assert info.value.error == "nope"


def test_exceptions_in_try_callbacks_propagate_until_caught_again() -> None:
    boom = pipeline.map(int).catch().map_ok(lambda n: 1 / n)
    assert boom.call("2") == Ok(0.5)
    with pytest.raises(ZeroDivisionError):
        boom.call("0")
    result = boom.catch().call("0")
    assert isinstance(result, Err) and isinstance(result.error, ZeroDivisionError)
    assert boom.catch().call("2") == Ok(0.5)  # catch passes Ok/Err through, never Ok(Ok(...))


def test_try_variants_need_results() -> None:
    with pytest.raises(TypeError, match=r"\.catch\(\)"):
        pipeline.map(int).map_ok(str).call("1")
    with pytest.raises(TypeError, match="and_then"):
        pipeline.map(int).catch().and_then(lambda n: n).call("1")
    with pytest.raises(TypeError, match="exception classes"):
        pipeline.map(int).catch("ValueError")  # type: ignore[arg-type]
