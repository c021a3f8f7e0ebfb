"""Tests for EmbeddingsBuilder and the Embed rules (rig_sync.embeddings_builder)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest

from rig_sync import embeddings, embeddings_builder
from rig_sync.completion import Document
from rig_sync.embeddings import Embed, Embedding, EmbeddingsBuilder
from rig_sync.embeddings_builder import EMBED, EmbeddingsBuildError, EmbedError, to_texts
from rig_sync.errors import APIConnectionError, RigError


class RecordingModel:
    """Vectors are (len(text), first char code); records each call and how many ran at once."""

    provider = "fake"
    model = "recording"

    def __init__(self, max_documents: int = 3, fail_on: str | None = None, rendezvous: int = 0) -> None:
        self._max_documents = max_documents
        self.fail_on = fail_on
        self.calls: list[list[str]] = []
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()
        # Calls wait (bounded) for `rendezvous` peers so concurrency is forced, not left to timing.
        self._barrier = threading.Barrier(rendezvous) if rendezvous > 1 else None

    @property
    def max_documents(self) -> int:
        return self._max_documents

    @property
    def ndims(self) -> int:
        return 2

    def embed_text(self, text: str) -> Embedding:
        return self.embed_texts([text])[0]

    def embed_texts(self, texts: Sequence[str]) -> list[Embedding]:
        with self._lock:
            self.calls.append(list(texts))
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if self._barrier is not None:
                self._barrier.wait(timeout=5)
            if self.fail_on is not None and self.fail_on in texts:
                raise APIConnectionError("connection reset", provider="fake")
            return [Embedding(t, [float(len(t)), float(ord(t[0]))]) for t in texts]
        finally:
            with self._lock:
                self.active -= 1


# --- the Embed rules ----------------------------------------------------------------------------


@attrs.define
class Article:
    title: str = attrs.field(metadata=EMBED)
    body: str = attrs.field(metadata=EMBED)
    url: str = "https://example.invalid/a"
    year: int = 2024


@dataclasses.dataclass
class Review:
    author: str
    text: str = dataclasses.field(metadata=EMBED)


@attrs.define
class Plain:
    name: str
    note: str
    count: int


class Flashcard:
    def __init__(self, front: str, back: str) -> None:
        self.front, self.back = front, back

    def embed(self) -> list[str]:
        return [self.front, f"{self.front}: {self.back}"]


@pytest.mark.parametrize(
    ("document", "texts"),
    [
        ("hello", ["hello"]),
        (["a", "b"], ["a", "b"]),
        (("a", ["b", "c"]), ["a", "b", "c"]),
        ({"title": "T", "year": 2020, "body": "B"}, ["T", "B"]),
        ({"year": 2020, "n": 1}, ['{"year":2020,"n":1}']),
        (Article("Title", "Body"), ["Title", "Body"]),
        (Review("ann", "great"), ["great"]),
        (Plain("n", "x", 3), ["n", "x"]),
        (Flashcard("front", "back"), ["front", "front: back"]),
        (Document("id-1", "the text", {"k": "v"}), ["the text"]),
        ([Article("A", "B"), "c"], ["A", "B", "c"]),
    ],
)
def test_to_texts_rules(document: Any, texts: list[str]) -> None:
    assert to_texts(document) == texts


def test_embed_protocol_is_runtime_checkable() -> None:
    assert isinstance(Flashcard("a", "b"), Embed)
    assert not isinstance("text", Embed)


def test_register_a_new_type() -> None:
    class Point:
        def __init__(self, label: str) -> None:
            self.label = label

    to_texts.register(Point, lambda p: [p.label.upper()])
    assert to_texts(Point("north")) == ["NORTH"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (42, "cannot embed a int"),
        (object(), "cannot embed a object"),
        ("", "empty"),
        ([], "no text"),
        (["ok", ""], "empty"),
        (attrs.make_class("Nums", {"n": attrs.field(default=1)})(), "no text"),
    ],
)
def test_bad_documents_fail_when_added(document: Any, message: str) -> None:
    builder = EmbeddingsBuilder(RecordingModel())
    with pytest.raises(EmbedError, match=message) as info:
        builder.document(document)
    assert isinstance(info.value, RigError)
    assert len(builder) == 0


def test_embed_method_must_return_strings() -> None:
    class Bad:
        def embed(self) -> Any:
            return [1, 2]

    with pytest.raises(EmbedError, match=r"embed\(\) must return a list of str"):
        to_texts(Bad())


# --- building -----------------------------------------------------------------------------------


def test_build_pairs_each_document_with_its_embeddings_in_order() -> None:
    model = RecordingModel(max_documents=2)
    docs: list[Any] = ["one", Flashcard("two", "2"), "three", ["four", "five", "six"], "seven"]
    pairs = EmbeddingsBuilder(model, max_workers=3).document(docs[0]).documents(docs[1:]).build()
    assert [doc for doc, _ in pairs] == docs
    assert [[e.document for e in embs] for _, embs in pairs] == [
        ["one"], ["two", "two: 2"], ["three"], ["four", "five", "six"], ["seven"]
    ]
    assert pairs[0][1][0].vec == [3.0, float(ord("o"))]
    # 8 texts, at most 2 per request: 4 requests, every text sent exactly once
    assert len(model.calls) == 4
    assert all(len(call) <= 2 for call in model.calls)
    sent = sorted(t for call in model.calls for t in call)
    assert sent == sorted(["one", "two", "two: 2", "three", "four", "five", "six", "seven"])


def test_chunks_run_concurrently_but_never_above_max_workers() -> None:
    model = RecordingModel(max_documents=1, rendezvous=2)
    pairs = EmbeddingsBuilder(model, max_workers=2).documents([f"t{i}" for i in range(8)]).build()
    assert [doc for doc, _ in pairs] == [f"t{i}" for i in range(8)]
    assert model.peak == 2  # the rendezvous proves 2 ran together; the pool allows no third


def test_single_worker_is_sequential() -> None:
    model = RecordingModel(max_documents=1)
    EmbeddingsBuilder(model, max_workers=1).documents(["a", "b", "c"]).build()
    assert model.peak == 1
    assert model.calls == [["a"], ["b"], ["c"]]


def test_failure_names_every_failed_document_and_returns_nothing() -> None:
    model = RecordingModel(max_documents=2, fail_on="bad")
    builder = EmbeddingsBuilder(model).documents(["a", "b", "c", "bad", "e", "f"])
    with pytest.raises(EmbeddingsBuildError) as info:
        builder.build()
    err = info.value
    assert isinstance(err, RigError)
    assert [(pos, doc) for pos, doc, _ in err.failed] == [(2, "c"), (3, "bad")]  # the whole failed chunk
    assert all(isinstance(e, APIConnectionError) for _, _, e in err.failed)
    assert len(err.errors) == 1
    assert "2 of 6 documents failed" in str(err) and "positions 2, 3" in str(err)
    assert isinstance(err.__cause__, APIConnectionError)


def test_empty_builder_builds_nothing() -> None:
    model = RecordingModel()
    assert EmbeddingsBuilder(model).build() == []
    assert model.calls == []


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_max_workers_must_be_positive(workers: Any) -> None:
    with pytest.raises(ValueError, match="max_workers"):
        EmbeddingsBuilder(RecordingModel(), max_workers=workers)


@pytest.mark.parametrize("first", ["rig_sync.embeddings_builder", "rig_sync.embeddings", "rig_sync.vector_store"])
def test_any_import_order_works(first: str) -> None:
    code = f"import {first}\nfrom rig_sync.embeddings import EmbeddingsBuilder\nprint(EmbeddingsBuilder.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "EmbeddingsBuilder"


def test_reexported_from_embeddings() -> None:
    assert embeddings.EmbeddingsBuilder is embeddings_builder.EmbeddingsBuilder
    assert embeddings.Embed is embeddings_builder.Embed
    assert {"Embed", "EmbeddingsBuilder"} <= set(embeddings.__all__)


# --- end to end over HTTP -----------------------------------------------------------------------


@pytest.fixture
def fake_openai() -> Iterator[tuple[Any, Any]]:
    from rig_sync.providers import openai
    from rig_sync.testing import FakeProvider

    with FakeProvider() as fake:
        client = openai.Client(fake.api_key, base_url=fake.base_url)
        yield fake, openai.EmbeddingModel(client, "text-embedding-3-small", max_documents=2)


def test_end_to_end_chunks_become_requests(fake_openai: tuple[Any, Any]) -> None:
    fake, model = fake_openai
    docs: list[Any] = ["alpha", {"title": "beta", "body": "gamma"}, Article("delta", "epsilon")]
    pairs = EmbeddingsBuilder(model, max_workers=2).documents(docs).build()
    assert [doc for doc, _ in pairs] == docs
    assert [[e.document for e in embs] for _, embs in pairs] == [["alpha"], ["beta", "gamma"], ["delta", "epsilon"]]
    assert pairs[2][1][1].vec == model.embed_text("epsilon").vec
    embedding_requests = [r for r in fake.requests if r.path.endswith("/embeddings")]
    assert len(embedding_requests) == 4  # 5 texts at 2 per request, then the check above
