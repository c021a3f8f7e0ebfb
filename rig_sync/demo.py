"""The end-to-end tour behind `make demo` / `python -m rig_sync demo`.

Offline it starts `rig_sync.testing.FakeProvider` and registers every provider whose wire format
the fake speaks under its own name, pointed at the fake, so every step goes through the real HTTP
stack (pool, retries, SSE/NDJSON parsing, multipart, base64) in each provider's own format. With
OPENAI_API_KEY in the environment (and no --offline), the same steps run against the real
providers whose keys are set.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TextIO

import attrs

from . import batch, pipeline
from .agent import AgentBuilder
from .client import ProviderValue
from .client.builder import ClientFactory, DynClientBuilder, load_provider
from .completion import CompletionModel, ToolDefinition
from .embeddings import EmbeddingModel
from .extractor import ExtractorBuilder
from .message import Message
from .streaming import TextChunk
from .testing import FakeProvider, Reply
from .tool import tool
from .transcription import TranscriptionRequest
from .vector_store import InMemoryVectorStore

# Chat models the run-time choice step asks, and where each provider's format lives on the fake
# ("/v1" for the OpenAI-format ones, the server root for the native ones).
CHAT_TARGETS = [("openai", "gpt-4o-mini", "/v1"), ("anthropic", "claude-3-7-sonnet-latest", ""),
                ("gemini", "gemini-2.0-flash", ""), ("cohere", "command-r-plus", ""), ("ollama", "llama3.2", ""),
                ("mistral", "mistral-small-latest", "/v1"), ("groq", "llama-3.3-70b-versatile", "/v1")]


@contextlib.contextmanager
def _target(offline: bool, out: TextIO) -> Iterator[tuple[DynClientBuilder, dict[str, str], list[tuple[str, str]],
                                                         FakeProvider | None]]:
    """A registry whose providers reach either the fake provider or the real services."""
    builder = DynClientBuilder()
    models = {"chat": "gpt-4o-mini", "embed": "text-embedding-3-small", "stt": "whisper-1",
              "image": "gpt-image-1", "tts": "tts-1"}
    if os.environ.get("OPENAI_API_KEY") and not offline:
        print("Using the real providers whose keys are set (pass --offline to use the fake).", file=out)
        with_keys = [(p, m) for p, m, _ in CHAT_TARGETS if any(os.environ.get(v) for v in load_provider(p).env_api_key)]
        yield builder, models, with_keys, None
        return
    with FakeProvider() as fake:
        print(f"Using rig_sync.testing.FakeProvider at {fake.url} (offline, no API key needed).", file=out)
        for name, _, prefix in CHAT_TARGETS:  # each provider's own client class, aimed at the fake
            value = ProviderValue(fake.api_key, base_url=fake.url + prefix)
            client_class = load_provider(name)
            builder.register(ClientFactory(name, partial(client_class.from_value, value), client_class.from_value))
        yield builder, models, [(p, m) for p, m, _ in CHAT_TARGETS], fake


def _step(out: TextIO, title: str, fn: Callable[[], str]) -> None:
    started = time.perf_counter()
    result = fn()
    elapsed = (time.perf_counter() - started) * 1000
    print(f"\n== {title}  ({elapsed:.1f} ms)\n{result}", file=out)


def _tiny_wav() -> bytes:
    """A tenth of a second of silence as a valid WAV file (the fake transcribes any bytes)."""
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 800)
    return buf.getvalue()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

DOCS = [
    ("flurbo", "A flurbo is the currency of planet Blarg; one flurbo buys three glarbs."),
    ("glarb", "A glarb is a small blue fruit grown on the moons of Blarg."),
    ("invoice", "Quarterly invoices are due on the first Monday of each quarter."),
]


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@attrs.frozen
class Person:
    """A person mentioned in the text."""

    name: str
    age: int | None = None


def _rag_agent(chat: CompletionModel, embedder: EmbeddingModel, fake: FakeProvider | None) -> str:
    store: InMemoryVectorStore[str] = InMemoryVectorStore()
    vectors = embedder.embed_texts([text for _, text in DOCS])
    store.insert_documents([(doc_id, e.document, e.vec) for (doc_id, _), e in zip(DOCS, vectors, strict=True)])
    index = store.index(embedder)
    agent = (AgentBuilder(chat).preamble("Answer from the context; use tools for arithmetic.")
             .dynamic_context(2, index).tool(add).temperature(0.0).build())
    question = "What does a flurbo buy? And what is 2 + 3?"
    hits = [doc_id for _, doc_id, _ in index.top_n(question, 2)]
    prompt = 'call:add {"a": 2, "b": 3}' if fake is not None else question
    details = agent.prompt_details(prompt)
    return (f"retrieved for the question: {hits}\n"
            f"answer after {len(details.history)} messages: {details.output!r} "
            f"(tokens in/out: {details.usage.input_tokens}/{details.usage.output_tokens})")


def _extraction(chat: CompletionModel, fake: FakeProvider | None) -> str:
    if fake is not None:  # the fake answers with what a real model would submit
        fake.script(Reply.tool_calls([("submit", {"name": "Ada Lovelace", "age": 36})]))
    person = ExtractorBuilder(Person, chat).retries(1).build().extract("Ada Lovelace, 36, wrote the first program.")
    return repr(person)


def _batch(fake: FakeProvider) -> str:
    """`python -m rig_sync batch` over 300 prompts while the server fails some requests."""
    import json
    import tempfile

    from ._batch_cli import run as batch_command
    from .testing import Fault

    with tempfile.TemporaryDirectory() as tmp:
        prompts, results = os.path.join(tmp, "prompts.jsonl"), os.path.join(tmp, "results.jsonl")
        with open(prompts, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"id": f"q{i}", "prompt": f"question number {i}"}) + "\n" for i in range(300))
        fake.reset()
        # Retried by the transport: 429s and 500s. Not retried: 400s (they fail their line).
        fake.inject(Fault.status(429, retry_after=0), times=20, path="/v1/chat/completions")
        fake.inject(Fault.status(500), times=10, path="/v1/chat/completions")
        fake.inject(Fault.status(400), times=3, path="/v1/chat/completions")
        argv = [prompts, "--provider", "openai", "--model", "gpt-4o-mini", "--out", results, "--workers", "16",
                "--base-url", fake.base_url, "--api-key", fake.api_key, "--no-progress"]
        first_code = batch_command(argv)
        lines = [json.loads(line) for line in open(results, encoding="utf-8")]
        failed = [line["id"] for line in lines if not line["ok"]]
        sent = fake.request_count
        second_code = batch_command(argv)  # resumes: only the failed lines are sent again
        again = [json.loads(line) for line in open(results, encoding="utf-8")]
        in_order = [line["id"] for line in again] == [f"q{i}" for i in range(300)]
        return (f"first run: {len(lines)} lines, {len(lines) - len(failed)} answered, failed {failed} "
                f"(exit {first_code}); {sent} HTTP requests including retries\n"
                f"second run resent {fake.request_count - sent} requests: "
                f"{sum(line['ok'] for line in again)} of {len(again)} answered, in input order: {in_order} "
                f"(exit {second_code})")


def _pipeline(chat: CompletionModel, embedder: EmbeddingModel) -> str:
    agent = AgentBuilder(chat).preamble("Be brief.").build()
    op = pipeline.new().map(str.strip).map(lambda q: f"In one line: {q}").prompt(agent).build()
    answers = op.batch_call(3, ["  what is a glarb? ", " what is a flurbo?", "who pays invoices?  "])
    return "\n".join(answers)

ADD_TOOL = ToolDefinition(
    "add",
    "Add two integers.",
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]},
)


def run(offline: bool = False, out: TextIO | None = None) -> int:
    """Run the tour; returns a process exit code (0 when every step worked)."""
    import sys

    out = out or sys.stdout
    started = time.perf_counter()
    with _target(offline, out) as (builder, models, targets, fake):
        chat = builder.completion("openai", models["chat"])

        _step(out, "A prompt", lambda: chat.completion_request("Say hello in five words.")
              .preamble("Be brief.").temperature(0.2).max_tokens(32).send().text)

        def streamed() -> str:
            pieces: list[str] = []
            with chat.completion_request("Count to five, please.").stream() as stream:
                pieces.extend(c.text for c in stream if isinstance(c, TextChunk))
                usage = stream.response.usage
            joined = "|".join(pieces)
            return f"{len(pieces)} pieces: {joined}\nusage: {usage.input_tokens} in, {usage.output_tokens} out"

        _step(out, "A streamed reply", streamed)

        def embeddings() -> str:
            model = builder.embeddings("openai", models["embed"])
            cat, kitten, invoice = model.embed_texts(["a small cat", "a little kitten cat", "quarterly tax invoice"])

            def cos(x: list[float], y: list[float]) -> float:
                dot = sum(a * b for a, b in zip(x, y, strict=True))
                return dot / math.sqrt(sum(a * a for a in x) * sum(b * b for b in y))

            return (f"{len(cat.vec)} dimensions; cos(cat, kitten) = {cos(cat.vec, kitten.vec):.3f}, "
                    f"cos(cat, invoice) = {cos(cat.vec, invoice.vec):.3f}")

        _step(out, "Embeddings", embeddings)

        _step(out, "A transcription", lambda: builder.transcription("openai", models["stt"]).transcription(
            TranscriptionRequest(data=_tiny_wav(), filename="silence.wav", language="en")).text)

        def image() -> str:
            img = builder.image_generation("openai", models["image"]).image_generation_request() \
                .prompt("a lighthouse at dusk").width(1024).height(1024).send().image
            is_png = img.startswith(PNG_SIGNATURE)
            return f"{len(img)} bytes, PNG signature: {is_png}"

        _step(out, "An image", image)

        def speech() -> str:
            audio = builder.audio_generation("openai", models["tts"]).audio_generation_request() \
                .text("Hello from rig_sync.").voice("alloy").send().audio
            return f"{len(audio)} bytes of audio"

        _step(out, "Speech", speech)

        def tool_call() -> str:
            prompt = 'call:add {"a": 2, "b": 3}' if fake is not None else "What is 2 + 3? Use the add tool."
            first = chat.completion_request(prompt).tool(ADD_TOOL).send()
            call = first.tool_calls[0]
            result = str(call.arguments["a"] + call.arguments["b"])
            final = chat.completion_request(Message.tool_result(call.id, result)) \
                .messages([Message.user(prompt), first.message()]).tool(ADD_TOOL).send()
            return f"model called {call.name}({call.arguments}) -> {result}; model then said: {final.text!r}"

        _step(out, "A tool call, answered", tool_call)

        def dynamic() -> str:
            lines = []
            for provider, model_name in targets:  # one loop, each provider in its own wire format
                model = builder.id(f"{provider}:{model_name}").completion()
                reply = model.completion_request("Say hi.").send()
                streamed = model.completion_request("Stream a hi.").stream().text
                lines.append(f"{provider}:{model_name} -> {reply.text!r}, streamed {streamed!r}, "
                             f"{reply.usage.total_tokens} tokens")
            lines.append("registered providers: " + ", ".join(builder.providers()))
            return "\n".join(lines)

        _step(out, "Choosing a provider at run time (DynClientBuilder)", dynamic)

        def fan_out() -> str:
            winner, text = batch.fan_out("Who answers first?", targets[:4], builder=builder, mode="first")
            answers = batch.fan_out("Everyone, answer.", targets[:4], builder=builder)
            return f"first: {winner[0]} said {text!r}\nall: " + ", ".join(
                f"{p}: {a!r}" for (p, _), a in answers.items())

        _step(out, "Fan-out across providers (batch.fan_out)", fan_out)
        embedder = builder.embeddings("openai", models["embed"])
        _step(out, "A retrieval-augmented agent with a tool", lambda: _rag_agent(chat, embedder, fake))
        _step(out, "Extraction into an attrs class", lambda: _extraction(chat, fake))
        _step(out, "A pipeline, batched", lambda: _pipeline(chat, embedder))
        if fake is not None:
            _step(out, "The batch command: 300 prompts, injected faults, every line back", lambda: _batch(fake))
    print(f"\nDone in {(time.perf_counter() - started):.2f} s.", file=out)
    return 0
