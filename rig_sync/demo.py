"""The end-to-end tour behind `make demo` / `python -m rig_sync demo`.

It is offline by default, whatever keys the environment holds: it starts
`rig_sync.testing.FakeProvider` and registers every provider whose wire format the fake speaks
under its own name, pointed at the fake, so every step goes through the real HTTP stack (pool,
retries, SSE/NDJSON parsing, multipart, base64) in each provider's own format, and nothing is spent.

`--live` runs only the cheap text steps (a prompt, a stream, a tool call, a few embeddings, a hello
from each provider) against the real providers whose keys are set, after printing what it will
call; `--live --media` adds the paid media steps (transcription, image, speech). A real model may
answer anything, or fail: each step prints what happened and the tour goes on.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TextIO

import attrs

from . import batch, pipeline
from .agent import AgentBuilder
from .client import ProviderValue
from .client.builder import ClientFactory, DynClientBuilder, load_provider
from .completion import CompletionModel, CompletionResponse
from .embeddings import EmbeddingModel
from .errors import MissingAPIKeyError, RigError
from .extractor import ExtractorBuilder
from .message import Message, ToolCall
from .testing import FakeProvider, Reply
from .tool import ToolError, ToolSet, tool
from .transcription import TranscriptionRequest
from .vector_store import InMemoryVectorStore, StoreUnavailableError, VectorStoreIndex

# Chat models the run-time choice step asks, and where each provider's format lives on the fake
# ("/v1" for the OpenAI-format ones, the server root for the native ones).
CHAT_TARGETS = [("openai", "gpt-4o-mini", "/v1"), ("anthropic", "claude-3-7-sonnet-latest", ""),
                ("gemini", "gemini-2.0-flash", ""), ("cohere", "command-r-plus", ""), ("ollama", "llama3.2", ""),
                ("mistral", "mistral-small-latest", "/v1"), ("groq", "llama-3.3-70b-versatile", "/v1")]
# The embedding model a live run uses: the first of these whose provider has a key.
EMBED_TARGETS = [("openai", "text-embedding-3-small"), ("mistral", "mistral-embed"),
                 ("cohere", "embed-english-v3.0"), ("gemini", "text-embedding-004")]
# The media models (OpenAI's): offline always, live only with --media.
MEDIA = {"stt": "whisper-1", "image": "gpt-image-1", "tts": "tts-1"}


@attrs.frozen
class Step:
    """One section of the tour: its title, what it calls (shown before a live run), and the work."""

    title: str
    run: Callable[[], str] = attrs.field(repr=False)
    calls: str = ""


class StepFailed(RigError):
    """A step whose every part failed (each part's error is in the message)."""


def _run_step(out: TextIO, step: Step) -> bool:
    started = time.perf_counter()
    try:
        result, ok = step.run(), True
    except StepFailed as exc:
        result, ok = f"failed:\n{exc}", False
    except RigError as exc:  # a live provider may refuse, limit or fail: report it and go on
        result, ok = f"failed: {type(exc).__name__}: {exc}", False
    elapsed = (time.perf_counter() - started) * 1000
    print(f"\n== {step.title}  ({elapsed:.1f} ms)\n{result}", file=out)
    return ok


def _said(reply: CompletionResponse) -> str:
    """What a model answered, or what it gave instead of text (a refusal, a cut-off)."""
    if reply.text.strip():
        return repr(reply.text)
    return f"no text (finish reason: {reply.finish_reason})"


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


def _rag_agent(chat: CompletionModel, embedder: EmbeddingModel) -> str:
    """Index the corpus into a SQLite file (the `sqlite` extra), reopen it, and answer from it."""
    import tempfile

    from .vector_stores.sqlite import SQLiteVectorStore

    vectors = embedder.embed_texts([text for _, text in DOCS])
    rows = [(doc_id, e.document, e.vec) for (doc_id, _), e in zip(DOCS, vectors, strict=True)]
    with tempfile.TemporaryDirectory(prefix="rig-demo-") as tmp:
        path = os.path.join(tmp, "demo.db")
        try:
            with SQLiteVectorStore[str](path) as store:
                store.insert_documents(rows, batch_size=2)  # each batch one transaction
        except StoreUnavailableError as exc:  # without the extra the tour still runs, in memory
            memory: InMemoryVectorStore[str] = InMemoryVectorStore.from_documents_with_ids(rows)
            return f"no SQLite store here ({exc}); in memory instead:\n" + _answer_from(memory.index(embedder), chat)
        size = os.path.getsize(path)
        with SQLiteVectorStore[str](path) as reopened:  # a new process would open the file just so
            found = _answer_from(reopened.index(embedder), chat)
            return (f"indexed {len(reopened)} documents into a SQLite vector store ({size} bytes in a temporary "
                    f"directory), closed it and opened it again\n{found}")


def _answer_from(index: VectorStoreIndex, chat: CompletionModel) -> str:
    agent = (AgentBuilder(chat).preamble("Answer from the context; use tools for arithmetic.")
             .dynamic_context(2, index).tool(add).temperature(0.0).build())
    question = "What does a flurbo buy? And what is 2 + 3?"
    hits = [doc_id for _, doc_id, _ in index.top_n(question, 2)]
    details = agent.prompt_details(FAKE_ADD_PROMPT)  # what the fake reads as "call add(2, 3)"
    return (f"retrieved for the question: {hits}\n"
            f"answer after {len(details.history)} messages: {details.output!r} "
            f"(tokens in/out: {details.usage.input_tokens}/{details.usage.output_tokens})")


def _extraction(chat: CompletionModel, fake: FakeProvider) -> str:
    fake.script(Reply.tool_calls([("submit", {"name": "Ada Lovelace", "age": 36})]))  # what a real model submits
    person = ExtractorBuilder(Person, chat).retries(1).build().extract("Ada Lovelace, 36, wrote the first program.")
    return repr(person)


def _batch(fake: FakeProvider) -> str:
    """`rig-sync batch` over 300 prompts while the server fails some requests."""
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
        argv = [prompts, "--model", "openai:gpt-4o-mini", "--out", results, "--workers", "16",
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


def _provider_batch(fake: FakeProvider) -> str:
    """`rig-sync batch --provider-batch`: 200 prompts as one OpenAI batch job (about half the price,
    answered within 24 h). The command is killed while it waits, and run again: it reattaches to
    the job through its journal instead of paying for it twice."""
    import json
    import subprocess
    import tempfile

    from ._batch_cli import run as batch_command

    fake.reset()
    fake.batch_polls = None  # the job runs until the "provider" finishes it (finish_jobs below)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prompts, results = os.path.join(tmp, "prompts.jsonl"), os.path.join(tmp, "results.jsonl")
            with open(prompts, "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps({"id": f"q{i}", "prompt": "FAIL_ITEM" if i in (7, 70) else f"question {i}"})
                              + "\n" for i in range(200))
            argv = [prompts, "--model", "openai:gpt-4o-mini", "--provider-batch", "--out", results,
                    "--base-url", fake.base_url, "--api-key", fake.api_key, "--no-progress"]
            with subprocess.Popen([sys.executable, "-m", "rig_sync", "batch", *argv], stderr=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True) as child:
                assert child.stderr is not None
                child.stderr.readline()  # "... batch job(s) ID; waiting ...": the job and its id are journaled
                child.kill()  # SIGKILL: no clean-up of any kind
                child.wait()
            (job,) = fake.batch_jobs("openai")
            killed = (f"submitted {job.total} requests as {job.id}; the command was killed while waiting "
                      f"(exit {child.returncode}), the job {job.phase} at the provider")
            fake.finish_jobs()  # meanwhile, the provider ends the job
            code = batch_command(argv)  # the same command again
            lines = [json.loads(line) for line in open(results, encoding="utf-8")]
            failed = [line["id"] for line in lines if not line["ok"]]
            in_order = [line["id"] for line in lines] == [f"q{i}" for i in range(200)]
            return (f"{killed}\nrun again: reattached, {fake.jobs_created} job created in all; "
                    f"{len(lines) - len(failed)} of {len(lines)} answered, failed {failed}, in input order: "
                    f"{in_order} (exit {code})")
    finally:
        fake.batch_polls = 2


def _pipeline(chat: CompletionModel) -> str:
    agent = AgentBuilder(chat).preamble("Be brief.").build()
    op = pipeline.new().map(str.strip).map(lambda q: f"In one line: {q}").prompt(agent).build()
    answers = op.batch_call(3, ["  what is a glarb? ", " what is a flurbo?", "who pays invoices?  "])
    return "\n".join(answers)


# --- the steps a live run shares with the offline tour -------------------------------------------

FAKE_ADD_PROMPT = 'call:add {"a": 2, "b": 3}'
LIVE_ADD_PROMPT = "What is 2 + 3? Use the add tool."


def _prompt(chat: CompletionModel) -> str:
    reply = chat.completion_request("Say hello in five words.").preamble("Be brief.").temperature(0.2) \
        .max_tokens(32).send()
    return f"the model said: {_said(reply)}"


def _streamed(chat: CompletionModel) -> str:
    with chat.completion_request("Count to five, please.").max_tokens(32).stream() as stream:
        pieces = list(stream.text_stream())
        reply = stream.response
    usage = reply.usage
    return (f"{len(pieces)} pieces: {'|'.join(pieces)}\n"
            f"usage: {usage.input_tokens} in, {usage.output_tokens} out" + ("" if pieces else f"; {_said(reply)}"))


def _embeddings(model: EmbeddingModel) -> str:
    cat, kitten, invoice = model.embed_texts(["a small cat", "a little kitten cat", "quarterly tax invoice"])

    def cos(x: list[float], y: list[float]) -> float:
        norms = math.sqrt(sum(a * a for a in x) * sum(b * b for b in y))
        return sum(a * b for a, b in zip(x, y, strict=True)) / norms if norms else math.nan

    return (f"{len(cat.vec)} dimensions; cos(cat, kitten) = {cos(cat.vec, kitten.vec):.3f}, "
            f"cos(cat, invoice) = {cos(cat.vec, invoice.vec):.3f}")


def _tool_call(chat: CompletionModel, prompt: str) -> str:
    """One round trip by hand: the model asks for `add`, we run it, the model answers with the result."""
    tools, definition = ToolSet([add]), add.definition()
    first = chat.completion_request(prompt).tool(definition).max_tokens(128).send()
    if not first.tool_calls:  # a real model may just answer
        return f"the model answered without calling the tool: {_said(first)}"
    answers: list[tuple[ToolCall, str, bool]] = []
    for call in first.tool_calls:
        try:
            answers.append((call, tools.call(call.name, call.arguments), False))
        except ToolError as exc:  # an unknown tool or unfit arguments go back to the model, as an agent does
            answers.append((call, f"error: {exc}", True))
    results = [Message.tool_result(c.id, text, c.call_id, is_error) for c, text, is_error in answers]
    final = chat.completion_request(results[-1]).messages([Message.user(prompt), first.message(), *results[:-1]]) \
        .tool(definition).max_tokens(128).send()
    done = ", ".join(f"{c.name}({c.arguments}) -> {text}" for c, text, _ in answers)
    return f"model called {done}; model then said: {_said(final)}"


def _transcription(builder: DynClientBuilder) -> str:
    reply = builder.transcription("openai", MEDIA["stt"]).transcription(
        TranscriptionRequest(data=_tiny_wav(), filename="silence.wav", language="en"))
    return f"heard: {reply.text!r}" if reply.text.strip() else "heard nothing (it was silence)"


def _image(builder: DynClientBuilder) -> str:
    img = builder.image_generation("openai", MEDIA["image"]).image_generation_request() \
        .prompt("a lighthouse at dusk").width(1024).height(1024).additional_params({"quality": "low"}).send().image
    return f"{len(img)} bytes, PNG signature: {img.startswith(PNG_SIGNATURE)}"


def _speech(builder: DynClientBuilder) -> str:
    audio = builder.audio_generation("openai", MEDIA["tts"]).audio_generation_request() \
        .text("Hello from rig_sync.").voice("alloy").send().audio
    return f"{len(audio)} bytes of audio"


def _hellos(builder: DynClientBuilder, targets: list[tuple[str, str]]) -> str:
    lines, answered = [], 0
    for provider, model_name in targets:  # one loop, each provider in its own wire format
        try:
            model = builder.id(f"{provider}:{model_name}").completion()
            reply = model.completion_request("Say hi.").max_tokens(16).send()
            streamed = model.completion_request("Stream a hi.").max_tokens(16).stream().text
        except RigError as exc:  # one provider failing leaves the others to answer
            lines.append(f"{provider}:{model_name} failed: {type(exc).__name__}: {exc}")
            continue
        answered += 1
        lines.append(f"{provider}:{model_name} -> {_said(reply)}, streamed {streamed!r}, "
                     f"{reply.usage.total_tokens} tokens")
    if not answered:
        raise StepFailed("\n".join(lines))
    return "\n".join([*lines, "registered providers: " + ", ".join(builder.providers())])


def _fan_out(builder: DynClientBuilder, targets: list[tuple[str, str]]) -> str:
    winner, text = batch.fan_out("Who answers first?", targets, builder=builder, mode="first")
    answers = batch.fan_out("Everyone, answer.", targets, builder=builder)
    return f"first: {winner[0]} said {text!r}\nall: " + ", ".join(f"{p}: {a!r}" for (p, _), a in answers.items())


def _shared_steps(builder: DynClientBuilder, chat: tuple[str, str], embed: tuple[str, str] | None,
                  hellos: list[tuple[str, str]], media: bool, add_prompt: str) -> list[Step]:
    """The steps a live run may take too; `calls` says what each one sends."""
    chat_id = ":".join(chat)
    steps = [Step("A prompt", lambda: _prompt(builder.completion(*chat)), chat_id),
             Step("A streamed reply", lambda: _streamed(builder.completion(*chat)), chat_id)]
    if embed is not None:
        steps.append(Step("Embeddings", lambda: _embeddings(builder.embeddings(*embed)),
                          f"{':'.join(embed)} (3 short texts)"))
    if media:
        steps += [Step("A transcription", partial(_transcription, builder),
                       f"openai:{MEDIA['stt']} (0.1 s of silence)"),
                  Step("An image", partial(_image, builder),
                       f"openai:{MEDIA['image']} (one 1024x1024 image, low quality)"),
                  Step("Speech", partial(_speech, builder), f"openai:{MEDIA['tts']} (20 characters)")]
    return [*steps,
            Step("A tool call, answered", lambda: _tool_call(builder.completion(*chat), add_prompt),
                 f"{chat_id} (2 requests)"),
            Step("Choosing a provider at run time (DynClientBuilder)", partial(_hellos, builder, hellos),
                 ", ".join(":".join(t) for t in hellos) + " (2 short requests each)")]


def _offline_steps(fake: FakeProvider) -> list[Step]:
    builder = DynClientBuilder()
    for name, _, prefix in CHAT_TARGETS:  # each provider's own client class, aimed at the fake
        value = ProviderValue(fake.api_key, base_url=fake.url + prefix)
        client_class = load_provider(name)
        builder.register(ClientFactory(name, partial(client_class.from_value, value), client_class.from_value))
    targets = [(p, m) for p, m, _ in CHAT_TARGETS]
    chat = builder.completion(*targets[0])
    embedder = builder.embeddings(*EMBED_TARGETS[0])
    return [*_shared_steps(builder, targets[0], EMBED_TARGETS[0], targets, True, FAKE_ADD_PROMPT),
            Step("Fan-out across providers (batch.fan_out)", partial(_fan_out, builder, targets[:4])),
            Step("A retrieval-augmented agent with a tool, over a SQLite vector store",
                 partial(_rag_agent, chat, embedder)),
            Step("Extraction into an attrs class", partial(_extraction, chat, fake)),
            Step("A pipeline, batched", partial(_pipeline, chat)),
            Step("The batch command: 300 prompts, injected faults, every line back", partial(_batch, fake)),
            Step("A provider batch job (batch.submit, half the price): killed while waiting, reattached",
                 partial(_provider_batch, fake))]


def _env_set(names: tuple[str, ...]) -> list[str]:
    return [n for n in names if os.environ.get(n, "").strip()]


def _configured(provider: str) -> bool:
    """Whether the environment names this provider: its key, or (for keyless ones) its base URL."""
    cls = load_provider(provider)
    return bool(_env_set(cls.env_api_key if cls.requires_api_key else (*cls.env_api_key, *cls.env_base_url)))


def _live_steps(media: bool, out: TextIO) -> list[Step]:
    """The steps a live run takes, printed (with where they go) before any is sent."""
    chats = [(p, m) for p, m, _ in CHAT_TARGETS if _configured(p)]
    if not chats:
        names = ", ".join(n for p, _, _ in CHAT_TARGETS for n in load_provider(p).env_api_key)
        raise MissingAPIKeyError(f"demo --live found no provider key: set one of {names} "
                                 "(or run the demo without --live: offline, free)")
    embed = next((t for t in EMBED_TARGETS if _configured(t[0])), None)
    with_media = media and _configured("openai")
    steps = _shared_steps(DynClientBuilder(), chats[0], embed, chats, with_media, LIVE_ADD_PROMPT)
    print("Live run: real requests to real providers, billed to your keys. It will call:", file=out)
    for step in steps:
        print(f"  {step.title}: {step.calls}", file=out)
    for provider, _ in chats:  # every provider a step uses is one of these
        cls = load_provider(provider)
        urls, keys = _env_set(cls.env_base_url), _env_set(cls.env_api_key)
        where = os.environ[urls[0]].strip() if urls else cls.default_base_url
        print(f"  ({provider} at {where}, {'key from ' + keys[0] if keys else 'no key'})", file=out)
    if not media:
        print("Left out: the paid media steps (transcription, image, speech); add --media to run them.", file=out)
    elif not with_media:
        print("Left out: the media steps, which need OPENAI_API_KEY.", file=out)
    return steps


def run(*, live: bool = False, media: bool = False, out: TextIO | None = None) -> int:
    """Run the tour; returns a process exit code. Offline, 0 when every step worked; live, 0 when
    any did (a real provider may refuse or fail some), with `media` adding the paid media steps."""
    out = out or sys.stdout
    started = time.perf_counter()
    if live:
        worked = [_run_step(out, step) for step in _live_steps(media, out)]
    else:
        with FakeProvider() as fake:
            print(f"Offline tour: every request goes to rig_sync.testing.FakeProvider at {fake.url}; "
                  "no API key is read and nothing is spent.", file=out)
            unused = _env_set(tuple(n for p, _, _ in CHAT_TARGETS for n in load_provider(p).env_api_key))
            if unused:
                print(f"({', '.join(unused)} set but not used: `demo --live` calls the real providers.)", file=out)
            worked = [_run_step(out, step) for step in _offline_steps(fake)]
    print(f"\nDone in {(time.perf_counter() - started):.2f} s: {sum(worked)} of {len(worked)} steps worked.",
          file=out)
    return 0 if (any(worked) if live else all(worked)) else 1
