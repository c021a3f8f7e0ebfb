"""API keys appear nowhere: not in logs, exception messages, reprs, tracebacks or pickled errors.

Every provider gets a distinctive key (`sk-SECRET-<provider>-1234567890`) and every capability it
claims is driven through success and failure: 401, 429 (with a retry), 500, refused connection,
timeout, malformed and mis-shaped bodies, and for streams a cut-off and an error event. Servers
are hostile here: error bodies, error pages and stream errors echo the key back, and the
connection errors name it. Everything the library leaves behind is then scanned: every log
record at DEBUG (root and urllib3), `observe` events, str/repr/traceback (causes included) of
each error, pickles of errors and responses, reprs of clients, models, builders, transports and
`ProviderValue`s.

Clients themselves legitimately pickle their key (an unpickled client, e.g. on a process-pool
worker, rebuilds its transport and must authenticate), so client pickles are checked to carry
it, on purpose, and are not scanned.

A second part runs the same checks against the real loopback `FakeProvider`, so urllib3's own
connection, retry and timeout logging is in the scan too.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses

from rig_sync import observe
from rig_sync.client import ProviderValue
from rig_sync.client.builder import DynClientBuilder, builtin_provider_names, load_provider
from rig_sync.errors import APIStatusError, RigError
from rig_sync.testing import FakeProvider, Fault
from tests.test_registry_walk import HOST, WALKED, Canned, canned_for, claims, run

PROVIDERS = builtin_provider_names()
MODEL_FACTORY = {
    "completion": "completion_model",
    "streaming": "completion_model",
    "embeddings": "embedding_model",
    "transcription": "transcription_model",
    "image_generation": "image_generation_model",
    "audio_generation": "audio_generation_model",
    "rerank": "rerank_model",
}


def key_for(name: str) -> str:
    return f"sk-SECRET-{name}-1234567890"


def forms_of(key: str) -> list[str]:
    """The key and the parts of it that would still give it away."""
    return [key, key.removeprefix("sk-"), key.encode().hex()]


def value_for(name: str, key: str) -> ProviderValue:
    options = {"api_version": "2024-10-21"} if name == "azure" else {}
    return ProviderValue(key, base_url=HOST, options=options)


class Evidence:
    """Everything that must not contain the key, gathered as text."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str | bytes) -> None:
        self.texts.append((where, text.decode("latin-1") if isinstance(text, bytes) else text))

    def error(self, exc: BaseException) -> None:
        self.add("str(error)", str(exc))
        self.add("repr(error)", repr(exc))
        self.add("traceback", "".join(traceback.format_exception(exc)))  # chained causes included
        # Every linked exception, the hidden (`from None`) context too: pickling helpers that keep
        # chains (tblib, as Dask installs it) ship it to other processes.
        seen: set[int] = set()
        linked: list[BaseException] = [exc]
        while linked:
            item = linked.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            self.add("linked error", f"{item!r} {item} {item.args!r} {vars(item)!r}")
            linked += [e for e in (item.__cause__, item.__context__) if e is not None]
        self.add("pickle(error)", pickle.dumps(exc))
        if isinstance(exc, APIStatusError):
            self.add("error.headers", repr(dict(exc.headers)))
            self.add("error.body", repr(exc.body))

    def result(self, value: Any) -> None:
        self.add("repr(result)", repr(value))
        try:
            self.add("pickle(result)", pickle.dumps(value))
        except (TypeError, pickle.PicklingError, AttributeError):
            pass  # a stream's generator does not pickle; its repr was scanned

    def logs(self, caplog: pytest.LogCaptureFixture) -> None:
        for record in caplog.records:
            self.add(f"log {record.name}", caplog.handler.format(record))

    def assert_clean(self, key: str) -> None:
        assert self.texts, "nothing was gathered to scan"
        for where, text in self.texts:
            for form in forms_of(key):
                assert form not in text, f"the key leaked into {where}: {text[:500]!r}"


@pytest.fixture
def evidence(caplog: pytest.LogCaptureFixture) -> Iterator[Evidence]:
    """DEBUG logging everywhere, and every observe event logged too."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="rig_sync")
    events = logging.getLogger("tests.events")

    def hook(event: Any) -> None:
        events.debug("event %r", event)

    observe.add_hook(hook)
    found = Evidence()
    try:
        yield found
    finally:
        observe.remove_hook(hook)
    found.logs(caplog)


# --- hostile answers, per scenario -------------------------------------------------------------------


def echo_json(key: str, status: int) -> dict[str, Any]:
    return {"body": json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "type": "invalid_request",
                                          "code": "invalid_api_key"}}),
            "status": status, "content_type": "application/json"}


def cut_stream(entry: Canned, key: str) -> dict[str, Any]:
    body = entry.body()
    return {"body": body[: len(body) // 2], "status": 200, "content_type": entry.kind()}


def stream_error_event(entry: Canned, key: str) -> dict[str, Any]:
    body = entry.body()
    first = body[: body.find(b"\n\n") + 2] if b"\n\n" in body else body[: body.find(b"\n") + 1]
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": f"bad key {key}"}}
    if "ndjson" in entry.kind():
        tail = json.dumps({"error": f"bad key {key}"}).encode() + b"\n"
    else:
        tail = f"event: error\ndata: {json.dumps(error)}\n\n".encode()
    return {"body": first + tail, "status": 200, "content_type": entry.kind()}


Scenario = Callable[[Canned, str], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {
    "ok": lambda entry, key: {"body": entry.body(), "status": 200, "content_type": entry.kind()},
    "401": lambda entry, key: echo_json(key, 401),
    "429": lambda entry, key: {**echo_json(key, 429), "headers": {"retry-after": "0"}},
    "500": lambda entry, key: {"body": f"<html>upstream failed; Authorization: Bearer {key}</html>", "status": 500,
                               "content_type": "text/html"},
    "refused": lambda entry, key: {"body": requests.ConnectionError(
        f"HTTPConnectionPool(host='127.0.0.1', port=9): Connection refused (Authorization: Bearer {key})")},
    "timeout": lambda entry, key: {"body": requests.ReadTimeout(f"read timed out (x-api-key: {key})")},
    "not-json": lambda entry, key: {"body": f"<html>proxy login; api-key={key}</html>", "status": 200,
                                    "content_type": "text/html"},
    "wrong-shape": lambda entry, key: {"body": json.dumps({"unexpected": True, "list": [1, 2]}), "status": 200,
                                       "content_type": "application/json"},
    "truncated-json": lambda entry, key: {"body": '{"id": "x", "choices": [', "status": 200,
                                          "content_type": "application/json"},
}
STREAM_SCENARIOS: dict[str, Scenario] = {"cut-stream": cut_stream, "stream-error": stream_error_event}

CASES = [
    (name, capability, scenario)
    for name in PROVIDERS
    for capability in WALKED
    if claims(name, capability)
    for scenario in [*SCENARIOS, *(STREAM_SCENARIOS if capability == "streaming" else ())]
]


def build(name: str, key: str, **kwargs: Any) -> Any:
    value = value_for(name, key)
    return load_provider(name)(key, base_url=value.base_url, **{**dict(value.options), **kwargs})


@pytest.mark.parametrize(("name", "capability", "scenario"), CASES)
def test_no_key_in_anything_left_behind(name: str, capability: str, scenario: str, evidence: Evidence) -> None:
    key = key_for(name)
    entry = canned_for(name, capability)
    answer = {**SCENARIOS, **STREAM_SCENARIOS}[scenario](entry, key)
    made = build(name, key, max_retries=1, retry=None)
    builder = load_provider(name).builder(key).base_url(HOST).timeout(5)
    dyn = DynClientBuilder()
    value = value_for(name, key)
    model = getattr(dyn, "completion" if capability == "streaming" else capability)(name, entry.model, value)
    direct = getattr(made, MODEL_FACTORY[capability])(entry.model)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add(entry.method, re.compile(re.escape(HOST) + r".*" + entry.url), **answer)
        for target in (model, direct):
            try:
                run(capability, target, entry)
            except Exception as exc:  # every failure is scanned, whatever its type
                assert isinstance(exc, RigError), f"{name} {capability} {scenario}: a raw {type(exc).__name__}: {exc}"
                evidence.error(exc)
            else:
                assert scenario in ("ok", "cut-stream", "stream-error", "truncated-json", "wrong-shape") or \
                    capability == "audio_generation", f"{scenario} did not fail"
        assert mocked.calls, "no request was sent"
        for call in mocked.calls:
            sent = dict(call.request.headers)
            assert any(key in v for v in sent.values()), "the key was not sent at all: the scan would prove nothing"
            evidence.add("request url", call.request.url or "")
    for obj in (made, builder, made.transport, value, model, direct, dyn, dyn.build_from_value(name, value)):
        evidence.add(f"repr({type(obj).__name__})", repr(obj))
        evidence.add(f"str({type(obj).__name__})", str(obj))
    evidence.add("repr(ProviderValue)", repr(ProviderValue(key)))
    evidence.assert_clean(key)


@pytest.mark.parametrize("name", PROVIDERS)
def test_results_do_not_carry_the_key(name: str, evidence: Evidence) -> None:
    """Successful answers (pickled, repr'd) hold the server's body, never the request's headers."""
    key = key_for(name)
    capability = next(c for c in WALKED if claims(name, c) and c != "streaming")
    entry = canned_for(name, capability)
    model = getattr(build(name, key), MODEL_FACTORY[capability])(entry.model)
    with responses.RequestsMock() as mocked:
        mocked.add(entry.method, re.compile(re.escape(HOST) + r".*" + entry.url), body=entry.body(), status=200,
                   content_type=entry.kind())
        if capability == "completion":
            evidence.result(model.completion_request("Hello").max_tokens(64).send())
        elif capability == "embeddings":
            evidence.result(model.embed_texts(list(entry.inputs)))
        else:  # pragma: no cover - every provider has completion or embeddings today
            pytest.fail(f"no result runner for {capability}")
    evidence.assert_clean(key)


@pytest.mark.parametrize("name", PROVIDERS)
def test_clients_pickle_their_key_on_purpose(name: str) -> None:
    """Documented: a client pickles with its key (a worker process rebuilds the transport and must
    authenticate); its repr and its errors never show it."""
    key = key_for(name)
    made = build(name, key)
    assert key.encode() in pickle.dumps(made)
    again = pickle.loads(pickle.dumps(made))
    assert key not in repr(again) and type(again) is type(made)


@pytest.mark.parametrize("name", PROVIDERS)
def test_key_in_plain_headers_is_treated_as_a_secret(name: str, evidence: Evidence) -> None:
    """A key passed through `headers=` (e.g. a gateway's own auth) is redacted like the API key."""
    key = key_for(name)
    gateway = f"gw-SECRET-{name}-0987654321"
    own = {k.lower() for k in build(name, key).make_auth(key).header_names()}
    header = next(h for h in ("x-api-key", "authorization", "api-key") if h not in own)
    made = build(name, key, headers={header: f"Bearer {gateway}" if header == "authorization" else gateway})
    capability = next(c for c in WALKED if claims(name, c))
    entry = canned_for(name, capability)
    with responses.RequestsMock() as mocked:
        mocked.add(entry.method, re.compile(re.escape(HOST) + r".*" + entry.url), **echo_json(gateway, 401))
        with pytest.raises(RigError) as info:
            run(capability, getattr(made, MODEL_FACTORY[capability])(entry.model), entry)
    evidence.error(info.value)
    evidence.add("repr(client)", repr(made))
    evidence.assert_clean(gateway)


# --- against the real loopback server: urllib3's own logging is in the scan ----------------------------


LOOPBACK_KEY = "sk-SECRET-loopback-1234567890"


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(require_key=LOOPBACK_KEY) as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused


_ECHO = {"error": {"message": f"Incorrect API key provided: {LOOPBACK_KEY}", "type": "invalid_request_error",
                   "code": "invalid_api_key"}}
FAKE_FAULTS: dict[str, tuple[Fault | None, int]] = {  # the fault and how many requests it hits
    "ok": (None, 0),
    "401": (Fault.status(401, body=_ECHO), 1),
    "429-then-ok": (Fault.status(429, body=_ECHO, retry_after=0), 1),
    "500": (Fault.status(500, body=_ECHO), 3),
    "timeout": (Fault.slow(2.0), 3),
    "dropped": (Fault.drop(), 3),
    "proxy-page": (Fault.raw(200, f"<html>login; Authorization: Bearer {LOOPBACK_KEY}</html>".encode()), 1),
    "truncated": (Fault.truncate(), 3),
    "cut-stream": (Fault.stream_cut(after_events=1), 1),
    "stream-error": (Fault.sse_error(error={"message": f"bad key {LOOPBACK_KEY}", "type": "auth"}), 1),
}


@pytest.mark.parametrize("fault", list(FAKE_FAULTS))
@pytest.mark.parametrize("streaming", [False, True], ids=["send", "stream"])
def test_no_key_leaks_over_real_sockets(fake: FakeProvider, fault: str, streaming: bool, evidence: Evidence) -> None:
    made = load_provider("openai").builder(LOOPBACK_KEY).base_url(fake.base_url).timeout((1.0, 0.5)).retry(
        _fast_retries()).build()
    injected, times = FAKE_FAULTS[fault]
    if injected is not None:
        fake.inject(injected, times=times)
    request = made.completion_model("gpt-4o-mini").completion_request("Hello")
    try:
        evidence.result(list(request.stream()) if streaming else request.send())
    except RigError as exc:
        evidence.error(exc)
    assert fake.request_count >= 1
    evidence.assert_clean(LOOPBACK_KEY)


def test_refused_connection_over_real_sockets(evidence: Evidence) -> None:
    key = "sk-SECRET-refused-1234567890"
    made = load_provider("anthropic").builder(key).base_url(f"http://127.0.0.1:{_closed_port()}").timeout(1).retry(
        _fast_retries()).build()
    with pytest.raises(RigError) as info:
        made.completion_model("claude").completion_request("Hello").send()
    evidence.error(info.value)
    evidence.assert_clean(key)


def _fast_retries() -> Any:
    from rig_sync.http import RetryPolicy

    return RetryPolicy(max_retries=2, backoff_base=0.0, backoff_max=0.0)


# --- the stream redactor itself -----------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_key_split_across_chunks_is_still_masked(cut: int) -> None:
    from rig_sync.errors import redact_stream

    key = "sk-SECRET-split-1234567890"
    body = f'data: {{"error": "bad key {key}"}}\n\n'.encode()
    chunks = list(redact_stream(iter([body[:cut], body[cut:]]), [key]))
    assert b"".join(chunks) == body.replace(key.encode(), b"***")
    assert all(chunks)


def test_the_stream_redactor_holds_back_nothing_it_need_not() -> None:
    from rig_sync.errors import redact_stream

    events = [b'data: {"a": 1}\n\n', b'data: {"b": 2}\n\n']
    out = redact_stream(iter(events), ["sk-SECRET-x-1234567890"])
    assert next(out) == events[0]  # delivered at once: a newline cannot begin the key
    assert list(out) == [events[1]]


def test_the_stream_redactor_closes_its_source_when_closed_early() -> None:
    from rig_sync.errors import redact_stream

    closed: list[bool] = []

    def source() -> Iterator[bytes]:
        try:
            yield b"one\n"
            yield b"two\n"
        finally:
            closed.append(True)

    out = redact_stream(source(), ["sk-SECRET-x-1234567890"])
    assert next(out) == b"one\n"
    out.close()
    assert closed == [True]
