"""The shape of `rig_sync.testing` (issue 14): modules share only public names; each fault is an
object that acts itself out; a dialect is one module registering routes, served by an untouched
server."""

from __future__ import annotations

import ast
import dataclasses
import http.client
import json
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import rig_sync.testing
from rig_sync import errors
from rig_sync.completion import CompletionModel
from rig_sync.http import RetryPolicy, Timeout
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider, Fault, RecordedRequest, Reply
from rig_sync.testing._dialect import ApiError, Dialect, JSONDict, dumps
from rig_sync.testing._faults import (
    DropFault,
    HangFault,
    RawFault,
    SlowFault,
    SseErrorFault,
    StatusFault,
    StreamCutFault,
    TruncateFault,
)
from rig_sync.testing._routes import Call, Response, disown, owns, route, unroute

TESTING = pathlib.Path(rig_sync.testing.__file__).parent
PROMPT = "one two three four five six seven eight"

# --- imports ------------------------------------------------------------------------------------------


def imported_names(path: pathlib.Path) -> Iterator[tuple[str, str, int]]:
    """(module, name, line) of every `from X import name` in `path` whose X is a rig_sync module,
    wherever the import stands (top level, in a function, under TYPE_CHECKING)."""
    package = "rig_sync.testing"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = node.module or ""
        if module == "rig_sync" or module.startswith("rig_sync."):
            for alias in node.names:
                yield module, alias.name, node.lineno


def is_module(module: str, name: str) -> bool:
    """Whether `from module import name` imports a submodule (`from . import _openai`)."""
    where = pathlib.Path(rig_sync.testing.__file__).parents[1].joinpath(*module.split(".")[1:])
    return (where / f"{name}.py").exists() or (where / name / "__init__.py").exists()


def test_no_module_imports_a_private_name_from_another() -> None:
    offences = [
        f"{path.name}:{line}: from {module} import {name}"
        for path in sorted(TESTING.glob("*.py"))
        for module, name, line in imported_names(path)
        if name.startswith("_") and not is_module(module, name)
    ]
    assert offences == []


def test_the_import_check_sees_a_private_import(tmp_path: pathlib.Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._openai import _secret\n"
                      "from . import _openai\n", encoding="utf-8")
    found = list(imported_names(sample))
    assert ("rig_sync.testing._openai", "_secret", 3) in found
    assert [(m, n) for m, n, _ in found if n.startswith("_") and not is_module(m, n)] == [
        ("rig_sync.testing._openai", "_secret")
    ]


DIALECT_MODULES = {"_anthropic", "_azure", "_cohere", "_gemini", "_ollama", "_openai", "_voyage"}
CORE_MODULES = {"_http", "_state", "_exchange", "_server", "_routes", "_faults", "_values", "_dialect"}


def test_the_core_names_no_dialect_module() -> None:
    """The server, its state and the route table import no dialect: a new one needs no edit there."""
    for name in CORE_MODULES:
        modules = {module.rsplit(".", 1)[-1] for module, _, _ in imported_names(TESTING / f"{name}.py")}
        assert not modules & DIALECT_MODULES, name


def test_the_package_imports_every_dialect_module() -> None:
    init = TESTING / "__init__.py"
    submodules = {name for _, name, _ in imported_names(init) if name.startswith("_")}
    assert DIALECT_MODULES <= submodules


# --- faults as objects ----------------------------------------------------------------------------------

FAULTS: list[tuple[Fault, type[Fault], str]] = [
    (Fault.status(503), StatusFault, "status"),
    (Fault.drop(), DropFault, "drop"),
    (Fault.slow(0.01), SlowFault, "slow"),
    (Fault.hang(), HangFault, "hang"),
    (Fault.truncate(10), TruncateFault, "truncate"),
    (Fault.stream_cut(after_events=3), StreamCutFault, "stream_cut"),
    (Fault.raw(502, b"<html>bad gateway</html>"), RawFault, "raw"),
    (Fault.sse_error(after_events=2), SseErrorFault, "sse_error"),
]


@pytest.mark.parametrize(("fault", "cls", "kind"), FAULTS, ids=[kind for _, _, kind in FAULTS])
def test_each_constructor_builds_its_own_frozen_class(fault: Fault, cls: type[Fault], kind: str) -> None:
    assert type(fault) is cls and isinstance(fault, Fault)
    assert fault.kind == kind == cls.kind
    assert dataclasses.is_dataclass(fault)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fault.kind = "drop"
    assert type(fault).act is not Fault.act or type(fault).deliver is not Fault.deliver, "a fault that does nothing"


def test_the_constructors_keep_their_attributes() -> None:
    status = Fault.status(429, body={"x": 1}, headers={"a": "b"}, retry_after=1.5, retry_after_ms=250,
                          should_retry=False)
    assert isinstance(status, StatusFault)
    assert (status.status_code, status.body, status.content_type) == (429, {"x": 1}, "application/json")
    assert status.headers == (("a", "b"), ("Retry-After", "1.5"), ("retry-after-ms", "250"),
                              ("x-should-retry", "false"))
    raw = Fault.raw(200, bytearray(b"{}"), "application/json")  # type: ignore[arg-type]
    assert isinstance(raw, RawFault)
    assert (raw.status_code, raw.body, raw.content_type) == (200, b"{}", "application/json")
    assert dataclasses.replace(raw, headers=(("Location", "/x"),)).headers == (("Location", "/x"),)
    slow, cut, trunc = Fault.slow(2), Fault.stream_cut(), Fault.truncate()
    assert isinstance(slow, SlowFault) and slow.seconds == 2.0 and isinstance(slow.seconds, float)
    assert isinstance(cut, StreamCutFault) and cut.after_events == 2
    assert isinstance(trunc, TruncateFault) and trunc.n_bytes is None
    sse = Fault.sse_error()
    assert isinstance(sse, SseErrorFault) and sse.after_events == 1 and sse.error["type"] == "server_error"
    sse2 = Fault.sse_error(3, {"message": "m"})
    assert isinstance(sse2, SseErrorFault) and dict(sse2.error) == {"message": "m"}
    assert Fault.drop() == Fault.drop() and Fault.status(500) != Fault.raw(500, b"")


def test_fault_is_built_with_its_constructors_only() -> None:
    with pytest.raises(TypeError, match="constructors"):
        Fault()
    with FakeProvider() as fake, pytest.raises(TypeError, match="expected Fault"):
        fake.inject("drop")  # type: ignore[arg-type]


def model_of(fake: FakeProvider) -> CompletionModel:
    client = openai.Client(fake.api_key, base_url=fake.base_url, retry=RetryPolicy(max_retries=0),
                           timeout=Timeout(connect=2, read=0.5))
    return client.completion_model("gpt-4o")


def call(model: CompletionModel, mode: str) -> str:
    request = model.completion_request(PROMPT)
    if mode == "send":
        return request.send().text
    return "".join(str(getattr(chunk, "text", "")) for chunk in request.stream())


ACTED = [
    ("drop", "send", Fault.drop(), errors.APIConnectionError),
    ("drop", "stream", Fault.drop(), errors.APIConnectionError),
    ("status", "send", Fault.status(429), errors.RateLimitError),
    ("status", "stream", Fault.status(500), errors.InternalServerError),
    ("truncate", "send", Fault.truncate(), errors.APIConnectionError),
    ("truncate", "stream", Fault.truncate(), errors.StreamError),
    ("raw", "send", Fault.raw(200, b"<html>oops</html>"), errors.ResponseDecodeError),
    ("raw", "stream", Fault.raw(502, b"<html>bad gateway</html>"), errors.InternalServerError),
    ("sse_error", "send", Fault.sse_error(error={"message": "boom", "type": "api_error"}), errors.InternalServerError),
    ("sse_error", "stream", Fault.sse_error(error={"message": "boom", "type": "api_error"}), errors.StreamError),
    ("stream_cut", "send", Fault.stream_cut(), errors.APIConnectionError),
    ("stream_cut", "stream", Fault.stream_cut(after_events=3), errors.StreamError),
    ("hang", "send", Fault.hang(), errors.APITimeoutError),
]


@pytest.mark.parametrize(("kind", "mode", "fault", "error"), ACTED, ids=[f"{k}-{m}" for k, m, *_ in ACTED])
def test_each_fault_acts_itself_out(kind: str, mode: str, fault: Fault, error: type[errors.RigError],
                                    fake: FakeProvider) -> None:
    assert fault.kind == kind
    model = model_of(fake)
    fake.inject(fault)
    with pytest.raises(errors.RigError) as info:
        call(model, mode)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert fake.request_count == 1 and fake.pending_faults == 0  # sent once, the fault used up
    if kind == "sse_error":
        assert "boom" in str(info.value)
    assert call(model, mode) == "echo: " + PROMPT  # the next request is answered as usual


@pytest.mark.parametrize("mode", ["send", "stream"])
def test_a_slow_fault_waits_then_lets_the_route_answer(mode: str, fake: FakeProvider) -> None:
    fake.inject(Fault.slow(0.05))
    assert call(model_of(fake), mode) == "echo: " + PROMPT
    assert fake.pending_faults == 0


@dataclasses.dataclass(frozen=True)
class TeapotFault(Fault):
    """A fault defined outside the package: it acts itself out with no help from the server."""

    kind = "status"

    def act(self, handler: Any, dialect: Dialect, request_id: str) -> bool:
        body = dumps(dialect.error_body(418, "I'm a teapot", "teapot_error", "teapot", None))
        handler.send_full(418, body, "application/json", (), request_id)
        return True


def test_a_new_kind_of_fault_needs_no_change_to_the_server(fake: FakeProvider) -> None:
    fake.inject(TeapotFault())
    with pytest.raises(errors.APIStatusError) as info:
        call(model_of(fake), "send")
    assert info.value.status_code == 418 and "I'm a teapot" in str(info.value)


# --- a dialect from one module ----------------------------------------------------------------------------

PREFIX = "/probe-dialect/"


def _probe_error(status: int, message: str, type: str, code: str | None, param: str | None) -> JSONDict:
    return {"probe_error": {"status": status, "says": message, "code": code}}


PROBE = Dialect(
    name="probe",
    extract_key=lambda req: req.headers.get("x-probe-key") or None,
    error_body=_probe_error,
    status_error=lambda status: _probe_error(status, f"probe status {status}", "", None, None),
    sse_error=lambda error: b"event: probe-error\ndata: " + dumps(dict(error)) + b"\n\n",
    unknown_model=lambda model, req: ApiError(404, f"no probe model {model}", code="no_model"),
)


def probe_echo(call: Call) -> Response:
    body = call.body_object()
    if call.reply is not None:  # a scripted text reply: this route is conversational
        return Response.json({"said": call.reply.content, "request_id": call.request_id})
    return Response.json({"said": body.get("say"), "request_id": call.request_id, "model": body.get("model")})


@pytest.fixture
def probe_dialect() -> Iterator[None]:
    """Registers the probe dialect as a dialect module would at import time, and forgets it after."""
    owns(PREFIX, PROBE)
    route("POST", PREFIX + r"echo", dialect=PROBE, conversational=True)(probe_echo)
    try:
        yield
    finally:
        unroute(probe_echo)
        disown(PREFIX)


def exchange(fake: FakeProvider, method: str, path: str, body: Mapping[str, object] | None = None,
             key: str | None = "probe-key") -> tuple[int, Any]:
    host, port = fake.address
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        headers = {"Content-Type": "application/json"} | ({"x-probe-key": key} if key else {})
        conn.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_a_dialect_registered_from_outside_is_served(probe_dialect: None) -> None:
    with FakeProvider(models=["probe-1"]) as fake:
        assert exchange(fake, "POST", PREFIX + "echo", {"say": "hi", "model": "probe-1"}) == (
            200, {"said": "hi", "request_id": "req_1", "model": "probe-1"})
        # The probe's key, errors, model refusal, faults and scripted replies: all in its own shape.
        assert exchange(fake, "POST", PREFIX + "echo", {"say": "hi"}, key=None) == (
            401, {"probe_error": {"status": 401, "says": "You didn't provide an API key. You need to provide your "
                                  "API key in an Authorization header using Bearer auth.", "code": "invalid_api_key"}})
        assert exchange(fake, "POST", PREFIX + "echo", {"model": "gpt-4o"}) == (
            404, {"probe_error": {"status": 404, "says": "no probe model gpt-4o", "code": "no_model"}})
        assert exchange(fake, "GET", PREFIX + "elsewhere") == (
            404, {"probe_error": {"status": 404, "says": f"Invalid URL (GET {PREFIX}elsewhere)", "code": "not_found"}})
        fake.inject(Fault.status(503))
        assert exchange(fake, "POST", PREFIX + "echo", {"say": "hi"}) == (
            503, {"probe_error": {"status": 503, "says": "probe status 503", "code": None}})
        fake.inject(Fault.sse_error(error={"message": "boom", "type": "t", "code": "c"}))
        assert exchange(fake, "POST", PREFIX + "echo", {"say": "hi"}) == (
            500, {"probe_error": {"status": 500, "says": "boom", "code": "c"}})
        fake.script(Reply.text("scripted"))
        status, answer = exchange(fake, "POST", PREFIX + "echo", {"say": "hi"})
        assert (status, answer["said"]) == (200, "scripted")
        last = fake.last_request
        assert isinstance(last, RecordedRequest) and last.path == PREFIX + "echo" and last.json == {"say": "hi"}


def test_an_unregistered_dialect_is_gone(probe_dialect: None) -> None:
    unroute(probe_echo)
    disown(PREFIX)
    with FakeProvider() as fake:
        status, answer = exchange(fake, "POST", PREFIX + "echo", {"say": "hi"})
    assert status == 404 and answer["error"]["code"] == "not_found"  # OpenAI's shape: nobody owns the prefix
