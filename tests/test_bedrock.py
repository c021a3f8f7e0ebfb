"""Amazon Bedrock (issue 14) through the public API: `from rig_sync.providers import bedrock`.

Recorded payloads (tests/fixtures/bedrock, sources in tests/fixtures/README.md) are served by
`responses` on 127.0.0.1 base URLs, and by a loopback HTTP server where the bytes on the socket
matter: the binary event stream (cut anywhere across reads) and SigV4, whose signature the server
recomputes with botocore from the request it received. The decoder is checked against AWS's own
event-stream test vectors and against botocore's decoder; the client against the FakeProvider's
Bedrock dialect.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.eventstream
import pytest
import responses

from rig_sync import errors
from rig_sync.auth import BearerAuth
from rig_sync.completion import CompletionRequest, ToolChoice, ToolDefinition
from rig_sync.message import Message, Reasoning, Text, ToolCall
from rig_sync.providers import bedrock
from rig_sync.providers._bedrock_stream import encode_message, iter_event_messages
from rig_sync.streaming import FinalResponse, ReasoningChunk, TextChunk, ToolCallChunk
from rig_sync.testing import FakeProvider
from tests.conftest import ADD, FIXTURES, load_bytes, load_fixture, sent_json

HOST = "http://127.0.0.1:9"
NOVA = "us.amazon.nova-micro-v1:0"
CORAL = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
KEY_ID, SECRET, TOKEN = "AKIDEXAMPLE7777", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY", "SESSION-TOKEN-SECRET-123"
SIGV4_SHAPE = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
                         r"/bedrock/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
                         r"Signature=(?P<sig>[0-9a-f]{64})")


@pytest.fixture(autouse=True)
def no_aws_machine_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore's chain must see only what a test sets: no ~/.aws files, no instance metadata."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                 "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def keyed(base_url: str = HOST) -> bedrock.Client:
    return bedrock.Client("bedrock-api-key-1234567890", base_url=base_url, max_retries=0)


def signed(base_url: str, **kwargs: Any) -> bedrock.Client:
    options: dict[str, Any] = {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}
    options.update(kwargs)
    return bedrock.Client(region="eu-west-3", base_url=base_url, max_retries=0, **options)


def request(prompt: str, **kwargs: Any) -> CompletionRequest:
    return CompletionRequest(chat_history=(Message.user(prompt),), **kwargs)


def frames(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(encode_message({":event-type": kind, ":content-type": "application/json",
                                    ":message-type": "event"}, json.dumps(data).encode()) for kind, data in events)


def exception_frame(kind: str, message: str) -> bytes:
    return encode_message({":exception-type": kind, ":content-type": "application/json",
                           ":message-type": "exception"}, json.dumps({"message": message}).encode())


# --- the loopback server ------------------------------------------------------------------------------


class Loopback:
    """Records each request (method, raw path, headers, body) and answers with `answer`: a status,
    headers and the body in pieces, each written and flushed on its own (chunked when several)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.answer: tuple[int, dict[str, str], list[bytes]] = (200, {"content-type": "application/json"}, [b"{}"])
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.seen.append({"method": "POST", "path": self.path, "headers": dict(self.headers.items()),
                                   "body": body})
                status, headers, pieces = owner.answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if len(pieces) == 1:
                    self.send_header("Content-Length", str(len(pieces[0])))
                    self.end_headers()
                    self.wfile.write(pieces[0])
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in pieces:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    yield server
    server.close()


def recomputed_signature(seen: dict[str, Any], url: str, secret: str, token: str | None = None) -> str:
    """The signature botocore computes for the request the server received (only its signed headers)."""
    found = SIGV4_SHAPE.fullmatch(seen["headers"]["Authorization"])
    assert found is not None
    headers = {k: v for k, v in seen["headers"].items() if k.lower() in found["signed"].split(";")}
    req = botocore.awsrequest.AWSRequest(method=seen["method"], url=url + seen["path"], data=seen["body"],
                                         headers=headers)
    req.context["timestamp"] = seen["headers"]["X-Amz-Date"]
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(found["key"], secret, token), "bedrock",
                                     found["region"])
    assert signer.signed_headers(signer.headers_to_sign(req)) == found["signed"]
    sig: str = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    return sig


# --- Converse, with recorded answers ---------------------------------------------------------------------


def test_converse_sends_the_recorded_request_and_reads_the_answer(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{HOST}/model/us.amazon.nova-micro-v1%3A0/converse",
               body=load_bytes("bedrock/converse.text.nova_micro.json"), content_type="application/json",
               headers={"x-amzn-requestid": "0f4c-req"})
    resp = keyed().completion_model(NOVA).completion(request("Hello!", preamble="You are a chatbot."))
    recorded = load_fixture("bedrock/requests/converse.text.nova_micro.request.json")
    del recorded["inferenceConfig"]  # {} there; left out when nothing is set
    assert sent_json(mocked) == recorded
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer bedrock-api-key-1234567890"
    assert resp.text.startswith("Hello! How can I assist you today?")
    assert resp.finish_reason == "end_turn" and resp.id == "0f4c-req" and resp.model == NOVA
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (7, 30, 37)


def recorded_tools() -> tuple[ToolDefinition, ...]:
    recorded = load_fixture("bedrock/requests/converse.tool_use.nova_micro.request.json")
    specs = [t["toolSpec"] for t in recorded["toolConfig"]["tools"]]
    return tuple(ToolDefinition(spec["name"], spec["description"], spec["inputSchema"]["json"]) for spec in specs)


def test_tool_calls_and_results_round_trip_as_recorded(mocked: responses.RequestsMock) -> None:
    url = f"{HOST}/model/us.amazon.nova-micro-v1%3A0/converse"
    mocked.add("POST", url, body=load_bytes("bedrock/converse.tool_use.nova_micro.json"))
    mocked.add("POST", url, body=load_bytes("bedrock/converse.after_tool_result.nova_micro.json"))
    model = keyed().completion_model(NOVA)
    prompt = Message.user("What was the temperature in London 1st January 2022?")
    settings: dict[str, Any] = {"preamble": "You are a helpful chatbot.", "tools": recorded_tools(),
                                "tool_choice": ToolChoice("required")}
    first = model.completion(CompletionRequest(chat_history=(prompt,), **settings))
    assert first.finish_reason == "tool_use"
    (call,) = first.tool_calls
    assert (call.id, call.name, call.arguments) == ("tooluse_Mj06ft-ITJik1Otgpkc1uA", "temperature",
                                                     {"city": "London", "date": "2022-01-01"})
    recorded = load_fixture("bedrock/requests/converse.tool_use.nova_micro.request.json")
    assert sent_json(mocked, 0) == {k: v for k, v in recorded.items() if k != "inferenceConfig"}

    history = (prompt, first.message(), Message.tool_result(call.id, "30°C"))
    second = model.completion(CompletionRequest(chat_history=history, **settings))
    assert second.text.endswith("The temperature in London on 1st January 2022 was 30°C.")
    recorded = load_fixture("bedrock/requests/converse.after_tool_result.nova_micro.request.json")
    del recorded["messages"][2]["content"][0]["toolResult"]["status"]  # "success": ours says only "error"
    assert sent_json(mocked, 1) == {k: v for k, v in recorded.items() if k != "inferenceConfig"}


def test_a_failed_tool_and_parallel_results_go_in_one_user_turn(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{HOST}/model/m/converse", body=load_bytes("bedrock/converse.text.nova_micro.json"))
    calls = (ToolCall("t1", "add", {"a": 1}), ToolCall("t2", "add", {"a": 2}))
    history = (Message.user("add"), Message.assistant(calls), Message.tool_result("t1", "3"),
               Message.tool_result("t2", "no such number", is_error=True), Message.user("and?"))
    keyed().completion_model("m").completion(CompletionRequest(chat_history=history, tools=(ADD,)))
    messages = sent_json(mocked)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[2]["content"] == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "3"}]}},
        {"toolResult": {"toolUseId": "t2", "content": [{"text": "no such number"}], "status": "error"}},
        {"text": "and?"}]


def test_settings_go_into_inference_config_and_additional_params_are_merged(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{HOST}/model/m/converse", body=load_bytes("bedrock/converse.max_tokens.nova_micro.json"))
    resp = keyed().completion_model("m").completion(request(
        "What is the capital of France?", max_tokens=5, temperature=0.5,
        additional_params={"inferenceConfig": {"topP": 0.9}, "additionalModelRequestFields": {"top_k": 5}}))
    body = sent_json(mocked)
    assert body["inferenceConfig"] == {"maxTokens": 5, "temperature": 0.5, "topP": 0.9}
    assert body["additionalModelRequestFields"] == {"top_k": 5}
    assert resp.finish_reason == "max_tokens" and resp.text == "The capital of France is"


@pytest.mark.parametrize(("name", "read", "written"), [("cache_write", 0, 1322), ("cache_read", 1322, 0)])
def test_cache_tokens_are_part_of_the_input(mocked: responses.RequestsMock, name: str, read: int,
                                            written: int) -> None:
    mocked.add("POST", f"{HOST}/model/m/converse", body=load_bytes(f"bedrock/converse.{name}.claude_sonnet_4_5.json"))
    usage = keyed().completion_model("m").completion(request("What is 10 + 11?")).usage
    # Bedrock: inputTokens 2 leaves out the cache; totalTokens 1329 = 2 + 5 + 1322.
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (1324, 5, 1329)
    assert (usage.cached_input_tokens, usage.cache_write_tokens) == (read, written)
    assert usage.input_tokens + usage.output_tokens == usage.total_tokens


def test_signed_reasoning_comes_back_and_goes_out_as_recorded(mocked: responses.RequestsMock) -> None:
    url = f"{HOST}/model/m/converse"
    mocked.add("POST", url, body=load_bytes("bedrock/converse.reasoning.claude_sonnet_4.json"))
    mocked.add("POST", url, body=load_bytes("bedrock/converse.reasoning_history.claude_sonnet_4.json"))
    model = keyed().completion_model("m")
    first = model.completion(request("How do I cross the street?"))
    thought = first.choice[0]
    assert isinstance(thought, Reasoning) and thought.signature and thought.signature.startswith("Eu4CCkgI")
    recorded = load_fixture("bedrock/requests/converse.reasoning_history.claude_sonnet_4.request.json")
    follow_up = recorded["messages"][2]["content"][0]["text"]
    model.completion(CompletionRequest(chat_history=(Message.user("How do I cross the street?"), first.message(),
                                                     Message.user(follow_up))))
    assert sent_json(mocked, 1)["messages"] == recorded["messages"]


def test_redacted_reasoning_round_trips() -> None:
    from rig_sync.providers._bedrock_wire import converse_body, parse_converse

    answer = {"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}}, {"text": "Hi"}]}}, "stopReason": "end_turn"}
    resp = parse_converse(answer, "bedrock")
    assert resp.choice[0] == Reasoning("", encrypted="ZW5jcnlwdGVk")
    body = converse_body(CompletionRequest(chat_history=(Message.user("a"), resp.message(), Message.user("b"))),
                         "bedrock")
    assert body["messages"][1]["content"] == answer["output"]["message"]["content"]  # type: ignore[index]


def test_a_guardrail_that_withheld_everything_is_content_blocked() -> None:
    from rig_sync.providers._bedrock_wire import parse_converse

    blocked = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "guardrail_intervened"}
    with pytest.raises(errors.ContentBlockedError, match="guardrail_intervened") as info:
        parse_converse(blocked, "bedrock")
    assert info.value.reason == "guardrail_intervened"
    said = {**blocked, "output": {"message": {"role": "assistant", "content": [{"text": "Sorry, I can't."}]}}}
    assert parse_converse(said, "bedrock").text == "Sorry, I can't."  # the guardrail's own words stand


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "bedrock").iterdir() if p.is_file()))
def test_every_recorded_payload_parses(name: str) -> None:
    from rig_sync import _wire
    from rig_sync.providers import _bedrock_wire as wire
    from rig_sync.providers._bedrock_stream import stream_converse

    raw = load_bytes(f"bedrock/{name}")
    if name.startswith("converse_stream."):
        if "exception" in name:
            with pytest.raises(errors.StreamError, match="modelStreamErrorException"):
                list(stream_converse(iter_event_messages([raw]), "bedrock"))
            return
        final = list(stream_converse(iter_event_messages([raw]), "bedrock"))[-1]
        assert isinstance(final, FinalResponse) and final.response.usage.total_tokens
    elif name.startswith("converse."):
        assert wire.parse_converse(json.loads(raw), "bedrock").usage.total_tokens
    elif name.startswith("invoke.titan"):
        assert _wire.decode(wire.converter, json.loads(raw), wire.TitanResponse, "bedrock").embedding
    elif name.startswith("invoke.cohere"):
        assert _wire.decode(wire.converter, json.loads(raw), wire.CohereResponse, "bedrock").vectors()
    elif name.startswith("error."):
        assert json.loads(raw)["message"]
    elif name == "eventstream.test_vectors.json":
        assert json.loads(raw)["vectors"]
    else:  # pragma: no cover - a new fixture needs a reader here
        pytest.fail(f"no reader for {name}")


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind", "message", "error"), [
    (429, "ThrottlingException", "Too many requests, please wait before trying again.", errors.RateLimitError),
    (400, "ValidationException", "The provided model identifier is invalid.", errors.BadRequestError),
    (400, "ValidationException", "Input is too long for requested model.", errors.ContextWindowExceededError),
    (400, "ServiceQuotaExceededException", "Your request exceeds the service quota.", errors.RateLimitError),
    (403, "AccessDeniedException", "You don't have access to the model with the specified model ID.",
     errors.PermissionDeniedError),
    (403, "UnrecognizedClientException", "The security token included in the request is invalid.",
     errors.AuthenticationError),
    (403, "InvalidSignatureException", "The request signature we calculated does not match.",
     errors.AuthenticationError),
    (404, "ResourceNotFoundException", "Could not resolve the foundation model.", errors.NotFoundError),
    (503, "ServiceUnavailableException", "Bedrock is unable to process your request.", errors.InternalServerError),
    (429, "ModelNotReadyException", "The model is not ready to serve inference requests.",
     errors.InternalServerError),
    (424, "ModelErrorException", "The model failed to process the request.", errors.InternalServerError),
    (408, "ModelTimeoutException", "Model has timed out.", errors.RequestTimeoutStatusError),
])
@pytest.mark.parametrize("mode", ["send", "stream"])
def test_errors_are_mapped_by_x_amzn_errortype(mocked: responses.RequestsMock, status: int, kind: str, message: str,
                                               error: type[errors.APIStatusError], mode: str) -> None:
    path = "converse" if mode == "send" else "converse-stream"
    mocked.add("POST", f"{HOST}/model/m/{path}", json={"message": message}, status=status,
               headers={"x-amzn-errortype": kind + CORAL, "x-amzn-requestid": "req-42"})
    model = keyed().completion_model("m")
    with pytest.raises(errors.APIStatusError) as info:
        if mode == "send":
            model.completion(request("hi"))
        else:
            model.stream(request("hi"))
    err = info.value
    assert type(err) is error, f"{type(err).__name__}: {err}"
    assert (err.status_code, err.code, err.request_id, err.message) == (status, kind, "req-42", message)
    assert err.provider == "bedrock"


def test_recorded_error_bodies(mocked: responses.RequestsMock) -> None:
    url = f"{HOST}/model/m/converse"
    mocked.add("POST", url, body=load_bytes("bedrock/error.400_invalid_model_id.json"), status=400,
               content_type="application/json")
    mocked.add("POST", url, body=load_bytes("bedrock/error.429_throttling.json"), status=429,
               content_type="application/json")
    model = keyed().completion_model("m")
    with pytest.raises(errors.BadRequestError, match="The provided model identifier is invalid"):
        model.completion(request("hello"))
    with pytest.raises(errors.RateLimitError, match="Rate exceeded") as info:  # the type in the body's __type
        model.completion(request("hello"))
    assert info.value.code == "ThrottlingException" and info.value.is_retryable()


def test_an_error_object_with_status_200_is_no_answer(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{HOST}/model/m/converse", json={"message": "Malformed request."})
    with pytest.raises(errors.ResponseDecodeError, match="Malformed request"):
        keyed().completion_model("m").completion(request("hi"))


# --- the event stream ------------------------------------------------------------------------------------


VECTORS = load_fixture("bedrock/eventstream.test_vectors.json")["vectors"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_aws_event_stream_test_vectors(name: str) -> None:
    vector = VECTORS[name]
    data = bytes.fromhex(vector["encoded_hex"])
    if vector["expectation"] == "failure":
        with pytest.raises(errors.StreamError, match="corrupt"):
            list(iter_event_messages([data]))
        return
    (message,) = list(iter_event_messages([data]))
    (expected,) = list(botocore_messages(data))
    assert dict(message.headers) == expected.headers and message.payload == expected.payload


def botocore_messages(data: bytes) -> Iterator[Any]:
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(data)
    yield from buffer


@pytest.mark.parametrize("name", ["converse_stream.text.nova_micro.eventstream",
                                  "converse_stream.tool_use.nova_micro.eventstream",
                                  "converse_stream.reasoning.claude_sonnet_4.eventstream",
                                  "converse_stream.model_stream_error_exception.eventstream"])
def test_recorded_frames_decode_as_botocore_decodes_them_one_byte_at_a_time(name: str) -> None:
    data = load_bytes(f"bedrock/{name}")
    ours = list(iter_event_messages(data[i:i + 1] for i in range(len(data))))
    theirs = list(botocore_messages(data))
    assert [(dict(m.headers), m.payload) for m in ours] == [(m.headers, m.payload) for m in theirs]


def test_our_frames_decode_in_botocore() -> None:
    data = frames(("messageStart", {"role": "assistant"})) + exception_frame("throttlingException", "slow down")
    decoded = list(botocore_messages(data))
    assert decoded[0].headers[":event-type"] == "messageStart" and json.loads(decoded[0].payload) == {
        "role": "assistant"}
    assert decoded[1].headers[":exception-type"] == "throttlingException"


def test_a_bad_crc_is_a_stream_error() -> None:
    data = bytearray(frames(("messageStart", {"role": "assistant"})))
    data[-6] ^= 0x20  # a payload byte: the message CRC no longer matches
    with pytest.raises(errors.StreamError, match="CRC") as info:
        list(iter_event_messages([bytes(data)]))
    assert info.value.is_retryable()


def test_a_huge_declared_length_is_refused_before_reading_on() -> None:
    prelude = struct.pack(">II", 0xFFFFFFF0, 0)
    prelude += struct.pack(">I", zlib.crc32(prelude))  # a valid prelude CRC: only the length is wrong
    read: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for piece in (prelude, b"x" * 1024, b"never read"):
            read.append(piece)
            yield piece

    with pytest.raises(errors.StreamError, match="4,294,967,280 bytes"):
        list(iter_event_messages(chunks()))
    assert read == [prelude]  # refused at the prelude, nothing buffered towards 4 GiB


def test_a_stream_cut_inside_a_message_is_incomplete() -> None:
    data = frames(("messageStart", {"role": "assistant"}), ("contentBlockDelta",
                                                             {"contentBlockIndex": 0, "delta": {"text": "Hi"}}))
    with pytest.raises(errors.StreamError, match="ended inside a message") as info:
        list(iter_event_messages([data[:-5]]))
    assert info.value.is_retryable()


STREAMED = "application/vnd.amazon.eventstream"


def serve_stream(loopback: Loopback, data: bytes, piece: int) -> None:
    loopback.answer = (200, {"content-type": STREAMED}, [data[i:i + piece] for i in range(0, len(data), piece)])


@pytest.mark.parametrize("piece", [7, 1000])
def test_a_recorded_stream_read_in_pieces_that_cut_its_frames(loopback: Loopback, piece: int) -> None:
    serve_stream(loopback, load_bytes("bedrock/converse_stream.text.nova_micro.eventstream"), piece)
    stream = keyed(loopback.url).completion_model(NOVA).stream(request("What is the capital of France?"))
    chunks = list(stream)
    text = "".join(c.text for c in chunks if isinstance(c, TextChunk))
    final = chunks[-1]
    assert isinstance(final, FinalResponse) and final.response.text == text
    assert text.startswith("The capital of France is Paris.")
    assert len([c for c in chunks if isinstance(c, TextChunk)]) > 20
    assert final.response.finish_reason == "end_turn"
    assert (final.response.usage.input_tokens, final.response.usage.output_tokens) == (13, 82)
    assert loopback.seen[0]["path"] == "/model/us.amazon.nova-micro-v1%3A0/converse-stream"


def test_a_recorded_tool_call_stream(loopback: Loopback) -> None:
    serve_stream(loopback, load_bytes("bedrock/converse_stream.tool_use.nova_micro.eventstream"), 64)
    chunks = list(keyed(loopback.url).completion_model(NOVA).stream(request("temperature?", tools=(ADD,))))
    (call,) = [c.tool_call for c in chunks if isinstance(c, ToolCallChunk)]
    assert (call.id, call.name, call.arguments) == ("tooluse_lAG_zP8QRHmSYOwZzzaCqA", "get_temperature",
                                                     {"city": "Paris"})
    final = chunks[-1]
    assert isinstance(final, FinalResponse) and final.response.tool_calls == [call]
    assert final.response.finish_reason == "tool_use" and final.response.usage.total_tokens == 562


def test_a_recorded_reasoning_stream(loopback: Loopback) -> None:
    serve_stream(loopback, load_bytes("bedrock/converse_stream.reasoning.claude_sonnet_4.eventstream"), 100)
    chunks = list(keyed(loopback.url).completion_model("m").stream(request("Hello")))
    thought = "".join(c.text for c in chunks if isinstance(c, ReasoningChunk))
    final = chunks[-1]
    assert isinstance(final, FinalResponse)
    reasoning = final.response.choice[0]
    assert isinstance(reasoning, Reasoning) and reasoning.text == thought and reasoning.signature
    assert final.response.text == "Hello! It's nice to meet you. How can I help you today?"


@pytest.mark.parametrize(("kind", "retryable"), [("throttlingException", True), ("validationException", False),
                                                 ("internalServerException", True),
                                                 ("serviceUnavailableException", True)])
def test_an_exception_frame_mid_stream(loopback: Loopback, kind: str, retryable: bool) -> None:
    data = frames(("messageStart", {"role": "assistant"}),
                  ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}})) + exception_frame(
        kind, "Too many tokens, please wait before trying again.")
    serve_stream(loopback, data, 50)
    pieces: list[str] = []
    with pytest.raises(errors.StreamError) as info:
        for chunk in keyed(loopback.url).completion_model("m").stream(request("hi")):
            if isinstance(chunk, TextChunk):
                pieces.append(chunk.text)
    assert pieces == ["Hel"]
    assert str(info.value) == f"[bedrock] {kind} mid-stream: Too many tokens, please wait before trying again."
    assert info.value.is_retryable() is retryable and info.value.body["type"] == kind


def test_the_recorded_exception_frame(loopback: Loopback) -> None:
    serve_stream(loopback, load_bytes("bedrock/converse_stream.model_stream_error_exception.eventstream"), 1000)
    with pytest.raises(errors.StreamError, match=r"modelStreamErrorException mid-stream: Model Stream Error "
                                                 r"\(The model stream failed\.\)") as info:
        list(keyed(loopback.url).completion_model("m").stream(request("hi")))
    assert info.value.is_retryable() and info.value.body["originalStatusCode"] == 500


def test_a_stream_without_message_stop_is_incomplete(loopback: Loopback) -> None:
    serve_stream(loopback, frames(("messageStart", {"role": "assistant"}),
                                  ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}})), 1000)
    with pytest.raises(errors.StreamError, match="before messageStop") as info:
        list(keyed(loopback.url).completion_model("m").stream(request("hi")))
    assert info.value.is_retryable()


def test_raw_events_are_the_decoded_messages(loopback: Loopback) -> None:
    data = load_bytes("bedrock/converse_stream.text.nova_micro.eventstream")
    serve_stream(loopback, data, 1000)
    stream = keyed(loopback.url).completion_model("m").stream(request("hi", keep_raw_events=True))
    list(stream)
    assert stream.raw_events is not None and len(stream.raw_events) == len(list(botocore_messages(data))) == 33
    assert stream.raw_events[0].headers[":event-type"] == "messageStart"


# --- SigV4 -----------------------------------------------------------------------------------------------


def test_sigv4_signs_what_is_sent(loopback: Loopback) -> None:
    loopback.answer = (200, {"content-type": "application/json"}, [load_bytes("bedrock/converse.text.nova_micro.json")])
    model = "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    resp = signed(loopback.url, aws_session_token=TOKEN).completion_model(model).completion(request("Hello!"))
    assert resp.text.startswith("Hello!")
    (seen,) = loopback.seen
    # botocore's encoding of a path label: ':' and '/' percent-encoded, '.' and '-' kept
    assert seen["path"] == ("/model/arn%3Aaws%3Abedrock%3Aeu-west-3%3A123456789012%3Ainference-profile%2F"
                            "eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse")
    found = SIGV4_SHAPE.fullmatch(seen["headers"]["Authorization"])
    assert found is not None, seen["headers"]["Authorization"]
    assert (found["key"], found["region"], found["date"]) == (KEY_ID, "eu-west-3", seen["headers"]["X-Amz-Date"][:8])
    assert {"host", "x-amz-date", "x-amz-security-token", "content-type"} <= set(found["signed"].split(";"))
    assert seen["headers"]["X-Amz-Security-Token"] == TOKEN
    assert recomputed_signature(seen, loopback.url, SECRET, TOKEN) == found["sig"]
    assert recomputed_signature(seen, loopback.url, SECRET + "x", TOKEN) != found["sig"]


def test_sigv4_streams_and_embeddings_verify_too(loopback: Loopback) -> None:
    client = signed(loopback.url)
    serve_stream(loopback, load_bytes("bedrock/converse_stream.text.nova_micro.eventstream"), 500)
    list(client.completion_model(NOVA).stream(request("What is the capital of France?")))
    titan = load_bytes("bedrock/invoke.titan_embed_text_v2.json")
    loopback.answer = (200, {"content-type": "application/json"}, [titan])
    client.embedding_model(bedrock.TITAN_EMBED_TEXT_V2).embed_text("Hello, world!")
    for seen in loopback.seen:
        found = SIGV4_SHAPE.fullmatch(seen["headers"]["Authorization"])
        assert found is not None and recomputed_signature(seen, loopback.url, SECRET) == found["sig"]
        assert "X-Amz-Security-Token" not in seen["headers"]
    assert loopback.seen[1]["path"] == "/model/amazon.titan-embed-text-v2%3A0/invoke"


def test_refreshed_credentials_sign_the_next_call(loopback: Loopback) -> None:
    import datetime

    loopback.answer = (200, {"content-type": "application/json"}, [load_bytes("bedrock/converse.text.nova_micro.json")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    now = [start]
    issued = iter([("AKIDSECOND002", "second-secret", "second-tok")])

    def refresh() -> dict[str, str]:
        key, secret, token = next(issued)
        return {"access_key": key, "secret_key": secret, "token": token,
                "expiry_time": (now[0] + datetime.timedelta(hours=1)).isoformat()}

    creds = botocore.credentials.RefreshableCredentials(
        "AKIDFIRST0001", "first-secret", "first-token", start + datetime.timedelta(hours=1), refresh, "test",
        time_fetcher=lambda: now[0])
    model = signed(loopback.url, aws_access_key_id=None, aws_secret_access_key=None,
                   credentials=creds).completion_model("m")
    model.completion(request("one"))
    now[0] = start + datetime.timedelta(hours=2)  # the first credentials have expired
    model.completion(request("two"))
    found = [SIGV4_SHAPE.fullmatch(seen["headers"]["Authorization"]) for seen in loopback.seen]
    assert [f["key"] for f in found if f] == ["AKIDFIRST0001", "AKIDSECOND002"]
    assert found[0] and recomputed_signature(loopback.seen[0], loopback.url, "first-secret", "first-token") == \
        found[0]["sig"]
    assert found[1] and recomputed_signature(loopback.seen[1], loopback.url, "second-secret", "second-tok") == \
        found[1]["sig"]
    assert loopback.seen[1]["headers"]["X-Amz-Security-Token"] == "second-tok"


def test_credentials_come_from_botocores_chain(loopback: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    loopback.answer = (200, {"content-type": "application/json"}, [load_bytes("bedrock/converse.text.nova_micro.json")])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    monkeypatch.setenv("BEDROCK_BASE_URL", loopback.url)
    client = bedrock.Client()
    assert client.region == "ap-southeast-2"
    client.completion_model("m").completion(request("hi"))
    found = SIGV4_SHAPE.fullmatch(loopback.seen[0]["headers"]["Authorization"])
    assert found is not None and (found["key"], found["region"]) == (KEY_ID, "ap-southeast-2")
    assert recomputed_signature(loopback.seen[0], loopback.url, SECRET) == found["sig"]


def test_a_profile_gives_credentials_and_region(loopback: Loopback, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[profile dev]\nregion = ca-central-1\n")
    (tmp_path / "credentials").write_text(f"[dev]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    client = bedrock.Client(aws_profile="dev")
    assert client.region == "ca-central-1" and client.base_url == "https://bedrock-runtime.ca-central-1.amazonaws.com"


def test_no_credentials_anywhere_names_every_way(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.ClientBuildError, match=r"AWS_BEARER_TOKEN_BEDROCK.*AWS_ACCESS_KEY_ID"):
        bedrock.Client(region="us-east-1")


def test_without_botocore_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "botocore" or m.startswith("botocore.")]:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    with pytest.raises(errors.ClientBuildError, match=re.escape("pip install 'rig_sync[bedrock]'")):
        bedrock.Client(region="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    assert keyed().region is None  # a Bedrock API key needs no botocore


def test_importing_the_provider_imports_no_botocore() -> None:
    code = ("import sys, rig_sync.providers.bedrock as b; b.Client('k', region='us-east-1'); "
            "print('botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_secret_in_reprs_errors_or_logs(loopback: Loopback, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    echo = json.dumps({"message": f"The security token {TOKEN} with secret {SECRET} is invalid"}).encode()
    loopback.answer = (403, {"content-type": "application/json",
                             "x-amzn-errortype": "UnrecognizedClientException" + CORAL}, [echo])
    client = signed(loopback.url, aws_session_token=TOKEN)
    model = client.completion_model("m")
    with pytest.raises(errors.AuthenticationError) as info:
        model.completion(request("hi"))
    err = info.value
    shown = " ".join([str(err), repr(err), repr(err.body), repr(dict(err.headers)), repr(client), repr(model),
                      repr(client.transport), repr(client.transport.auth), str(pickle.dumps(err)),
                      caplog.text])
    for secret in (SECRET, TOKEN):
        assert secret not in shown
    assert "***" in err.message


def test_a_signing_client_pickles_and_signs_where_unpickled(loopback: Loopback) -> None:
    loopback.answer = (200, {"content-type": "application/json"}, [load_bytes("bedrock/converse.text.nova_micro.json")])
    again = pickle.loads(pickle.dumps(signed(loopback.url)))
    again.completion_model("m").completion(request("hi"))
    found = SIGV4_SHAPE.fullmatch(loopback.seen[0]["headers"]["Authorization"])
    assert found is not None and recomputed_signature(loopback.seen[0], loopback.url, SECRET) == found["sig"]


# --- region, base URL, key ----------------------------------------------------------------------------------


def test_region_from_the_option_then_aws_region_then_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert bedrock.Client("k").base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert bedrock.Client("k").region == "us-west-2"
    assert bedrock.Client("k", region="ap-northeast-1").base_url == "https://bedrock-runtime.ap-northeast-1.amazonaws.com"
    monkeypatch.setenv("BEDROCK_BASE_URL", "http://127.0.0.1:8/bedrock")
    assert bedrock.Client("k").base_url == "http://127.0.0.1:8/bedrock"


def test_a_missing_or_bad_region_is_refused() -> None:
    with pytest.raises(errors.ClientBuildError, match=r"no region.*AWS_REGION"):
        bedrock.Client("k")
    with pytest.raises(errors.ClientBuildError, match="not an AWS region"):
        bedrock.Client("k", region="us-east-1.evil.com")
    assert bedrock.Client("k", base_url="https://bedrock-runtime.sa-east-1.amazonaws.com").region == "sa-east-1"


def test_the_bearer_key_from_the_environment(monkeypatch: pytest.MonkeyPatch, mocked: responses.RequestsMock) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKfromenv123")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    mocked.add("POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
               body=load_bytes("bedrock/converse.text.nova_micro.json"))
    bedrock.Client.from_env().completion_model("m").completion(request("hi"))
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer ABSKfromenv123"


def test_signing_keys_passed_outrank_a_bearer_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKfromenv123")
    signing = bedrock.Client(region="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    assert isinstance(signing.transport.auth, bedrock.AwsSigV4Auth)
    assert "ABSKfromenv123" not in signing.transport.auth.secrets()  # the variable was not read
    assert isinstance(bedrock.Client(region="us-east-1").transport.auth, BearerAuth)  # nothing passed: it is


def test_one_kind_of_credentials_at_a_time() -> None:
    with pytest.raises(errors.ClientBuildError, match="one kind of credentials"):
        bedrock.Client("k", region="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    with pytest.raises(errors.ClientBuildError, match="go together"):
        bedrock.Client(region="us-east-1", aws_access_key_id=KEY_ID)


def test_model_names_that_could_steer_the_url_are_refused() -> None:
    for bad in ("..", "a/../b", "m?x=1", "m#f"):
        with pytest.raises(errors.InvalidRequestError):
            keyed().completion_model(bad).completion(request("hi"))


# --- embeddings -----------------------------------------------------------------------------------------------


def test_titan_embeddings_one_text_per_call(mocked: responses.RequestsMock) -> None:
    url = f"{HOST}/model/amazon.titan-embed-text-v2%3A0/invoke"
    mocked.add("POST", url, body=load_bytes("bedrock/invoke.titan_embed_text_v2.json"))
    mocked.add("POST", url, body=load_bytes("bedrock/invoke.titan_embed_text_v2.json"))
    model = keyed().embedding_model(bedrock.TITAN_EMBED_TEXT_V2)
    assert model.ndims == 1024 and model.max_documents == 1
    out = model.embed_texts(["Hello, world!", "again"])
    assert [e.document for e in out] == ["Hello, world!", "again"] and len(out[0].vec) == 1024
    assert sent_json(mocked, 0) == {**load_fixture("bedrock/requests/invoke.titan_embed_text_v2.request.json")}
    assert mocked.calls[0].request.headers["Accept"] == "application/json"


def test_titan_dimensions(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{HOST}/model/amazon.titan-embed-text-v2%3A0/invoke",
               body=load_bytes("bedrock/invoke.titan_embed_text_v2.dimensions_256.json"))
    vec = keyed().embedding_model(bedrock.TITAN_EMBED_TEXT_V2, 256).embed_text("Test embedding dimensions").vec
    assert len(vec) == 256
    assert sent_json(mocked) == load_fixture("bedrock/requests/invoke.titan_embed_text_v2.dimensions_256.request.json")


def test_cohere_embeddings_floats_and_by_type(mocked: responses.RequestsMock) -> None:
    mocked.add("POST", f"{HOST}/model/cohere.embed-english-v3/invoke",
               body=load_bytes("bedrock/invoke.cohere_embed_english_v3.json"),
               headers={"x-amzn-bedrock-input-token-count": "4"})
    mocked.add("POST", f"{HOST}/model/cohere.embed-v4%3A0/invoke",
               body=load_bytes("bedrock/invoke.cohere_embed_v4.by_type.json"))
    query = keyed().embedding_model(bedrock.COHERE_EMBED_ENGLISH_V3, input_type="search_query")
    assert len(query.embed_text("Hello, world!").vec) == 1024
    assert sent_json(mocked, 0) == {"texts": ["Hello, world!"], "input_type": "search_query"}
    docs = keyed().embedding_model(bedrock.COHERE_EMBED_V4).embed_texts(["hello", "world"])
    assert [len(e.vec) for e in docs] == [1536, 1536]
    assert sent_json(mocked, 1) == {"texts": ["hello", "world"], "input_type": "search_document"}


def test_unknown_embedding_families_and_sizes_are_refused() -> None:
    with pytest.raises(errors.UnsupportedFeature, match="Titan text"):
        keyed().embedding_model("amazon.nova-2-multimodal-embeddings-v1:0").embed_text("hi")
    with pytest.raises(errors.InvalidRequestError, match="one vector size"):
        keyed().embedding_model(bedrock.COHERE_EMBED_ENGLISH_V3, 512)


# --- against the FakeProvider's Bedrock dialect ---------------------------------------------------------


def test_the_fake_answers_keyed_and_signed_clients() -> None:
    with FakeProvider() as fake:
        for client in (bedrock.Client(fake.api_key, base_url=fake.url),
                       bedrock.Client(region="us-east-1", base_url=fake.url, aws_access_key_id=KEY_ID,
                                      aws_secret_access_key=SECRET)):
            model = client.completion_model(NOVA)
            assert model.completion(request("hello there")).text == "echo: hello there"
            chunks = list(model.stream(request("hello there")))
            assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == "echo: hello there"
            assert fake.last_request is not None and fake.last_request.path.endswith("%3A0/converse-stream")
        auth = fake.last_request.headers["authorization"]
        assert SIGV4_SHAPE.fullmatch(auth)


def test_the_fake_runs_the_tool_loop() -> None:
    with FakeProvider() as fake:
        model = bedrock.Client(fake.api_key, base_url=fake.url).completion_model(NOVA)
        first = model.completion(request('call:add {"a": 2, "b": 3}', tools=(ADD,)))
        (call,) = first.tool_calls
        assert (call.name, call.arguments, first.finish_reason) == ("add", {"a": 2, "b": 3}, "tool_use")
        history = (Message.user('call:add {"a": 2, "b": 3}'), first.message(), Message.tool_result(call.id, "5"))
        assert model.completion(CompletionRequest(chat_history=history, tools=(ADD,))).text == "tool result: 5"
        streamed = list(model.stream(request('call:add {"a": 2, "b": 3}', tools=(ADD,))))
        assert [c.tool_call.arguments for c in streamed if isinstance(c, ToolCallChunk)] == [{"a": 2, "b": 3}]


def test_the_fake_embeds() -> None:
    with FakeProvider() as fake:
        client = bedrock.Client(fake.api_key, base_url=fake.url)
        titan = client.embedding_model(bedrock.TITAN_EMBED_TEXT_V2, 256)
        assert [len(e.vec) for e in titan.embed_texts(["a cat", "a dog"])] == [256, 256]
        assert fake.request_count == 2  # one text per call
        cohere = client.embedding_model(bedrock.COHERE_EMBED_V4)
        assert [len(e.vec) for e in cohere.embed_texts(["a cat", "a dog"])] == [1536, 1536]


def test_the_fake_refuses_a_malformed_signature_as_bedrock_does() -> None:
    from rig_sync.auth import Auth

    class Broken(Auth):
        def apply(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
            headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/bedrock"
            return url

    with FakeProvider() as fake:
        model = bedrock.Client(auth=Broken(), base_url=fake.url, max_retries=0).completion_model("m")
        with pytest.raises(errors.AuthenticationError, match="Signature") as info:
            model.completion(request("hi"))
    assert info.value.status_code == 403 and info.value.code == "IncompleteSignatureException"
    assert info.value.request_id


def test_the_fake_refuses_what_bedrock_refuses() -> None:
    with FakeProvider() as fake:
        model = bedrock.Client(fake.api_key, base_url=fake.url, max_retries=0).completion_model("m")
        history = (Message.user("a"), Message.assistant((ToolCall("t1", "add", {}),)), Message.tool_result("t1", "1"))
        with pytest.raises(errors.BadRequestError, match="toolConfig") as info:
            model.completion(CompletionRequest(chat_history=history))  # tool blocks without the tools
        assert info.value.code == "ValidationException"
        history = (Message.user("a"), Message.assistant(Text("b")))
        with pytest.raises(errors.BadRequestError, match="alternate"):
            model.completion(CompletionRequest(chat_history=(Message.assistant(Text("b")), *history)))
