"""Amazon Bedrock's Converse API and InvokeModel embeddings: wire classes, request encoding,
response decoding, model paths and error classes.

Mapping choices, in one place:

* `preamble` -> `system: [{"text"}]`; context documents go as a leading user message (rendered
  text), as for other providers without a documents field.
* Messages: a block per part (`{"text"}`, `{"image": {format, source.bytes}}`, `{"document":
  {format, name, source.bytes}}`, `{"toolUse": {toolUseId, name, input}}`, `{"toolResult":
  {toolUseId, content: [{"text"}], status: "error"?}}`, `{"reasoningContent": …}`). Empty text is
  left out (the API refuses blank text), and neighbouring messages of one role are merged (it wants
  the roles to alternate: parallel tool results go back in one user turn).
* Reasoning round-trips as `reasoningText {text, signature}`; `redactedContent` (Claude's
  encrypted thinking) becomes `Reasoning("", encrypted=<base64>)` and goes back as itself.
* Tools: `toolConfig.tools[].toolSpec {name, description, inputSchema.json}`; tool choice "auto"
  -> `{"auto": {}}`, "required" -> `{"any": {}}`, a named tool -> `{"tool": {"name"}}`; "none"
  sends no tools (refused when the history holds tool calls: the API then needs the tools).
* `max_tokens` / `temperature` -> `inferenceConfig.maxTokens` / `.temperature`; anything else
  (`topP`, `stopSequences`, `additionalModelRequestFields`, `guardrailConfig` …) through
  `additional_params`, merged into the body.
* The finish reason is Bedrock's `stopReason` as sent (`end_turn`, `tool_use`, `max_tokens`,
  `stop_sequence`, `guardrail_intervened`, `content_filtered`, …). A guardrail or filter that
  withheld the answer without any text raises `ContentBlockedError`.
* Usage: Bedrock's `inputTokens` leaves out the prompt-cache reads and writes (`cacheReadInputTokens`,
  `cacheWriteInputTokens`), which its `totalTokens` counts. `Usage.input_tokens` holds them all, so
  `input + output == total` as for every provider; the cached part is `cached_input_tokens`, the
  written part `cache_write_tokens`.
* Errors: the body is `{"message"}`, the error type comes in the `x-amzn-errortype` header
  (`ThrottlingException:http://internal.amazon.com/coral/…`) or a body's `__type`/`code`;
  `ERROR_CLASSES` maps it into the error tree.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs

from .. import _wire
from ..completion import CompletionRequest, CompletionResponse, ToolChoice, Usage, deep_merge
from ..errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentBlockedError,
    ContextWindowExceededError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutStatusError,
    ResponseDecodeError,
    UnsupportedFeature,
)
from ..http import Conventions
from ..message import Audio, DocumentContent, Image, Message, Part, Reasoning, Text, ToolCall, ToolResult
from ..streaming import parse_tool_call
from ._common import model_in_path, usage_of

__all__ = ["converter", "CONVENTIONS", "ERROR_CLASSES", "error_type", "model_path",
           "converse_body", "parse_converse", "refuse_error_body", "usage_from", "BLOCKED_STOP_REASONS"]

converter = _wire.make_converter()
converter.register_structure_hook_func(lambda t: t == list[float], lambda value, _: [float(v) for v in value])

# --- errors ---------------------------------------------------------------------------------------

# Bedrock's error types (botocore's bedrock-runtime model, plus the service front end's own).
ERROR_CLASSES: dict[str, type[APIStatusError]] = {
    "ThrottlingException": RateLimitError,  # 429
    "ServiceQuotaExceededException": RateLimitError,  # 400: a quota, not a passing burst
    "ValidationException": BadRequestError,  # 400 (a prompt too long: ContextWindowExceededError)
    "AccessDeniedException": PermissionDeniedError,  # 403: the model is not enabled for the account
    "ResourceNotFoundException": NotFoundError,  # 404
    "ConflictException": ConflictError,
    "ModelTimeoutException": RequestTimeoutStatusError,  # 408
    "ServiceUnavailableException": InternalServerError,  # 503
    "ModelNotReadyException": InternalServerError,  # 429: the model is loading; retried like a 429
    "InternalServerException": InternalServerError,  # 500
    "ModelErrorException": InternalServerError,  # 424: the model failed on this request
    "ModelStreamErrorException": InternalServerError,  # 424
    # The signing front end: a key or signature that is wrong, not a missing permission.
    "UnrecognizedClientException": AuthenticationError,
    "InvalidSignatureException": AuthenticationError,
    "IncompleteSignatureException": AuthenticationError,
    "MissingAuthenticationTokenException": AuthenticationError,
    "ExpiredTokenException": AuthenticationError,
    "InvalidClientTokenId": AuthenticationError,
}
# How Bedrock says a prompt does not fit ("Input is too long for requested model.", Claude's
# "prompt is too long: … tokens > … maximum", Llama's "too many input tokens").
_CONTEXT = re.compile(r"too long|too many (input )?tokens|context (length|window)|exceeds? the maximum", re.I)


def _type_name(raw: object) -> str | None:
    """`ThrottlingException` from `ThrottlingException:http://internal.amazon.com/…` or
    `com.amazon.coral.service#ThrottlingException` (as botocore reads it)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip() or None


def error_type(headers: Mapping[str, str] | None, body: Any) -> str | None:
    """The error type of an answer: the `x-amzn-errortype` header, else the body's `__type` or `code`."""
    found = _type_name(headers.get("x-amzn-errortype")) if headers is not None else None
    if found is None and isinstance(body, dict):
        for key in ("__type", "code", "Code"):
            found = _type_name(body.get(key))
            if found:
                break
    return found


def _class_for(kind: str | None, message: str) -> type[APIStatusError] | None:
    cls = ERROR_CLASSES.get(kind or "")
    if cls is BadRequestError and _CONTEXT.search(message):
        return ContextWindowExceededError
    return cls


def _error_class(status: int, code: str | None, body: Any) -> type[APIStatusError] | None:
    message = body.get("message") if isinstance(body, dict) else None
    return _class_for(code, message if isinstance(message, str) else "")


# The request id, and the error type (from `x-amzn-errortype` or the body) as the error's code and class.
CONVENTIONS = Conventions(request_id_headers=("x-amzn-requestid",), error_code=error_type,
                          error_class=_error_class, secret_headers=frozenset({"x-amz-security-token"}))


# --- model paths ----------------------------------------------------------------------------------


def model_path(provider: str, model: str, operation: str) -> str:
    """`/model/{modelId}/{operation}` with the id percent-encoded as botocore encodes a path label
    (everything but `-._~`: `:` -> `%3A`, an ARN's `/` -> `%2F`), so the path sent is the path signed.
    A name that could point the request elsewhere is refused first (`model_in_path`)."""
    for segment in model.split("/"):  # an ARN names a resource after a '/'
        model_in_path(provider, segment)
    return f"/model/{quote(model, safe='-._~')}/{operation}"


# --- request --------------------------------------------------------------------------------------


@attrs.define
class _Bytes:
    bytes: str  # base64, as the JSON protocol carries blobs


@attrs.define
class _S3Location:
    uri: str


@attrs.define
class _Source:
    bytes: str | None = None
    s3Location: _S3Location | None = None


@attrs.define
class _ImageSpec:
    format: str
    source: _Source


@attrs.define
class _DocumentSpec:
    format: str
    name: str
    source: _Source


@attrs.define
class _ToolUse:
    toolUseId: str
    name: str
    input: dict[str, Any]


@attrs.define
class _ToolResultText:
    text: str


@attrs.define
class _ToolResult:
    toolUseId: str
    content: list[_ToolResultText]
    status: str | None = None


@attrs.define
class _ReasoningText:
    text: str
    signature: str | None = None


@attrs.define
class _ReasoningContent:
    reasoningText: _ReasoningText | None = None
    redactedContent: str | None = None


@attrs.define
class _Block:
    """One content block: exactly one field is set (the wire's union)."""

    text: str | None = None
    image: _ImageSpec | None = None
    document: _DocumentSpec | None = None
    toolUse: _ToolUse | None = None
    toolResult: _ToolResult | None = None
    reasoningContent: _ReasoningContent | None = None


@attrs.define
class _Message:
    role: str
    content: list[_Block]


@attrs.define
class _SystemText:
    text: str


@attrs.define
class _InputSchema:
    json: dict[str, Any]


@attrs.define
class _ToolSpec:
    name: str
    inputSchema: _InputSchema
    description: str | None = None


@attrs.define
class _Tool:
    toolSpec: _ToolSpec


@attrs.define
class _NamedTool:
    name: str


@attrs.define
class _ToolChoice:
    auto: dict[str, Any] | None = None
    any: dict[str, Any] | None = None
    tool: _NamedTool | None = None


@attrs.define
class _ToolConfig:
    tools: list[_Tool]
    toolChoice: _ToolChoice | None = None


@attrs.define
class _InferenceConfig:
    maxTokens: int | None = None
    temperature: float | None = None


@attrs.define
class _Request:
    messages: list[_Message]
    system: list[_SystemText] | None = None
    inferenceConfig: _InferenceConfig | None = None
    toolConfig: _ToolConfig | None = None


_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}
_DOCUMENT_FORMATS = {"application/pdf": "pdf", "text/plain": "txt", "text/markdown": "md", "text/html": "html",
                     "text/csv": "csv", "application/msword": "doc",
                     "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
                     "application/vnd.ms-excel": "xls",
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx"}
# A document's name may hold letters, digits, single spaces, hyphens, parentheses and brackets.
_NAME_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")


def _source(data: str, is_url: bool, what: str, provider: str) -> _Source:
    if is_url:
        if data.startswith("s3://"):
            return _Source(s3Location=_S3Location(data))
        raise UnsupportedFeature(f"{provider}: an {what} by URL must be in S3 (s3://bucket/key); "
                                 "send other images and documents as bytes")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{provider}: the {what} data is not base64") from None
    return _Source(bytes=data)


def _image(part: Image, provider: str) -> _ImageSpec:
    media = part.media_type or ""
    fmt = _IMAGE_FORMATS.get(media.lower())
    if fmt is None:
        if part.is_url and part.data.startswith("s3://"):
            fmt = _IMAGE_FORMATS.get("image/" + part.data.rpartition(".")[2].lower())
        if fmt is None:
            raise UnsupportedFeature(f"{provider}: images must be PNG, JPEG, GIF or WebP, not {media or 'unknown'!r}")
    return _ImageSpec(fmt, _source(part.data, part.is_url, "image", provider))


def _document(part: DocumentContent, provider: str, index: int) -> _DocumentSpec:
    fmt = _DOCUMENT_FORMATS.get(part.media_type.lower())
    if fmt is None:
        raise UnsupportedFeature(f"{provider}: documents must be one of "
                                 f"{', '.join(sorted(set(_DOCUMENT_FORMATS.values())))}, not {part.media_type!r}")
    stem = (part.filename or "").rpartition(".")[0] or part.filename or ""
    name = " ".join(_NAME_NOT_ALLOWED.sub(" ", stem).split()) or f"document {index}"
    return _DocumentSpec(fmt, name[:200], _source(part.data, part.is_url, "document", provider))


def _reasoning(part: Reasoning) -> _ReasoningContent:
    if part.encrypted is not None and not part.text:
        return _ReasoningContent(redactedContent=part.encrypted)
    return _ReasoningContent(reasoningText=_ReasoningText(part.text, part.signature))


def _block(part: Part, provider: str, index: int) -> _Block | None:
    if isinstance(part, Text):
        return _Block(text=part.text) if part.text.strip() else None  # blank text is refused
    if isinstance(part, ToolResult):
        content = [_ToolResultText(part.content)] if part.content.strip() else []  # blank text is refused
        return _Block(toolResult=_ToolResult(part.id, content, "error" if part.is_error else None))
    if isinstance(part, ToolCall):
        return _Block(toolUse=_ToolUse(part.id, part.name, part.arguments))
    if isinstance(part, Reasoning):
        return _Block(reasoningContent=_reasoning(part))
    if isinstance(part, Image):
        return _Block(image=_image(part, provider))
    if isinstance(part, DocumentContent):
        return _Block(document=_document(part, provider, index))
    if isinstance(part, Audio):
        raise UnsupportedFeature(f"{provider}: the Converse API takes no audio input")
    raise UnsupportedFeature(f"{provider}: cannot send {type(part).__name__}")  # pragma: no cover


def _messages(history: tuple[Message, ...], provider: str) -> list[_Message]:
    out: list[_Message] = []
    documents = 0
    for message in history:
        blocks: list[_Block] = []
        parts = list(message.content)
        if message.role == "user":
            parts.sort(key=lambda p: not isinstance(p, ToolResult))  # results first, as for Claude
        for part in parts:
            documents += isinstance(part, DocumentContent)
            block = _block(part, provider, documents)
            if block is not None:
                blocks.append(block)
        if not blocks:
            if message.role == "assistant":
                continue  # an empty answer says nothing; the API would refuse it
            raise InvalidRequestError(f"{provider}: a user message needs non-empty content")
        if out and out[-1].role == message.role:
            out[-1].content.extend(blocks)  # the roles must alternate
        else:
            out.append(_Message(message.role, blocks))
    return out


def _tool_choice(choice: ToolChoice) -> _ToolChoice:
    if choice.mode == "required":
        return _ToolChoice(any={})
    if choice.mode == "tool":
        assert choice.name is not None
        return _ToolChoice(tool=_NamedTool(choice.name))
    return _ToolChoice(auto={})


def _tool_config(request: CompletionRequest, provider: str) -> _ToolConfig | None:
    choice = request.tool_choice
    if not request.tools:
        if choice is not None and choice.mode in ("required", "tool"):
            raise InvalidRequestError(f"{provider}: tool_choice {choice.mode!r} needs at least one tool")
        return None
    if choice is not None and choice.mode == "none":
        if any(isinstance(p, (ToolCall, ToolResult)) for m in request.chat_history for p in m.content):
            raise UnsupportedFeature(f"{provider}: Bedrock has no tool_choice 'none', and a history with tool "
                                     "calls needs the tools sent; leave tool_choice out instead")
        return None
    if choice is not None and choice.mode == "tool" and choice.name not in {t.name for t in request.tools}:
        raise InvalidRequestError(f"{provider}: tool_choice names {choice.name!r}, which is not among the tools")
    tools = [_Tool(_ToolSpec(t.name, _InputSchema(t.parameters or {"type": "object", "properties": {}}),
                             t.description or None)) for t in request.tools]
    return _ToolConfig(tools, _tool_choice(choice) if choice is not None else None)


def converse_body(request: CompletionRequest, provider: str) -> dict[str, Any]:
    """The JSON body of one Converse / ConverseStream request (the model is in the path)."""
    if not isinstance(request, CompletionRequest):
        raise InvalidRequestError(f"expected a CompletionRequest, got {type(request).__name__}")
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequestError(f"{provider}: temperature must be from 0 to 1, not {request.temperature!r}")
    inference = _InferenceConfig(request.max_tokens, request.temperature)
    body = _wire.encode(converter, _Request(
        messages=_messages(request.messages_with_documents(), provider),
        system=[_SystemText(request.preamble)] if request.preamble and request.preamble.strip() else None,
        inferenceConfig=inference if inference != _InferenceConfig() else None,
        toolConfig=_tool_config(request, provider),
    ))
    if request.additional_params:
        body = deep_merge(body, request.additional_params)
    return body


# --- response -------------------------------------------------------------------------------------


@_wire.lenient
@attrs.define
class _Usage:
    inputTokens: _wire.Tokens = None
    outputTokens: _wire.Tokens = None
    totalTokens: _wire.Tokens = None
    cacheReadInputTokens: _wire.Tokens = None
    cacheWriteInputTokens: _wire.Tokens = None


@attrs.define
class _OutMessage:
    content: list[dict[str, Any]]
    role: str = "assistant"


@attrs.define
class _Output:
    message: _OutMessage


@attrs.define
class _Response:
    output: _Output
    stopReason: str | None = None
    usage: _Usage | None = None


@attrs.define
class _ToolUseOut:
    toolUseId: str
    name: str
    input: Any = None


@attrs.define
class _ReasoningTextOut:
    text: str = ""
    signature: str | None = None


@attrs.define
class _ReasoningOut:
    reasoningText: _ReasoningTextOut | None = None
    redactedContent: str | None = None


# Stop reasons that mean a guardrail or filter withheld the answer.
BLOCKED_STOP_REASONS = frozenset({"guardrail_intervened", "content_filtered"})


def usage_from(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    read, written = usage.cacheReadInputTokens, usage.cacheWriteInputTokens
    # inputTokens leaves out the cache reads and writes; ours holds them (see the module doc).
    prompt = None if usage.inputTokens is None else usage.inputTokens + (read or 0) + (written or 0)
    return usage_of(prompt, usage.outputTokens, usage.totalTokens, cached=read, cache_write=written)


def _part(block: Any, provider: str) -> Text | ToolCall | Reasoning | None:
    if not isinstance(block, dict):
        return None
    if isinstance(block.get("text"), str):
        return Text(block["text"]) if block["text"] else None
    if "toolUse" in block:
        call = _wire.decode(converter, block["toolUse"], _ToolUseOut, provider)
        return parse_tool_call(call.toolUseId, call.name, call.input, provider)
    if "reasoningContent" in block:
        thought = _wire.decode(converter, block["reasoningContent"], _ReasoningOut, provider)
        if thought.reasoningText is not None:
            return Reasoning(thought.reasoningText.text, thought.reasoningText.signature)
        if thought.redactedContent:
            return Reasoning("", encrypted=thought.redactedContent)
    return None  # citations, images, guard content and blocks newer than this code: in raw_response


def refuse_error_body(data: Any, wanted: str, provider: str) -> None:
    """A 200 whose body is Bedrock's error object (`{"message"}` and nothing of an answer) raises
    `ResponseDecodeError` with the server's message (a proxy or gateway may answer so)."""
    if isinstance(data, dict) and isinstance(data.get("message"), str) and not {"output", "embedding",
                                                                               "embeddings"} & data.keys():
        kind = error_type(None, data)
        raise ResponseDecodeError(f"{provider} answered with an error instead of a {wanted}"
                                  f"{f' ({kind})' if kind else ''}: {data['message'][:500]}",
                                  provider=provider, body=data)


def parse_converse(data: Any, provider: str, *, request_id: str | None = None,
                   model: str | None = None) -> CompletionResponse:
    """A Converse answer as a CompletionResponse (a stream assembles the same object)."""
    refuse_error_body(data, "Converse answer", provider)
    resp = _wire.decode(converter, data, _Response, provider)
    parts = [p for p in (_part(b, provider) for b in resp.output.message.content) if p is not None]
    if resp.stopReason in BLOCKED_STOP_REASONS and not any(isinstance(p, Text) and p.text.strip() for p in parts):
        raise ContentBlockedError(f"Bedrock withheld the answer (stopReason {resp.stopReason!r}) and sent no text",
                                  provider=provider, reason=resp.stopReason, body=data)
    return CompletionResponse(tuple(parts), usage_from(resp.usage), data, resp.stopReason, request_id, model)


# --- embeddings (InvokeModel) ---------------------------------------------------------------------


@attrs.define
class TitanRequest:
    inputText: str
    dimensions: int | None = None
    normalize: bool | None = None


@attrs.define
class TitanResponse:
    embedding: list[float]
    inputTextTokenCount: _wire.Tokens = None


@attrs.define
class CohereRequest:
    texts: list[str]
    input_type: str
    output_dimension: int | None = None


@attrs.define
class _CohereByType:
    float: list[list[builtins.float]]  # the field's name is the vector type's


@attrs.define
class CohereResponse:
    embeddings: list[list[float]] | _CohereByType  # embeddings_floats, or embeddings_by_type (embed v4)
    id: str | None = None
    response_type: str | None = None

    def vectors(self) -> list[list[float]]:
        return self.embeddings.float if isinstance(self.embeddings, _CohereByType) else self.embeddings


def _structure_cohere_embeddings(value: Any, _: Any) -> list[list[float]] | _CohereByType:
    if isinstance(value, dict):
        return converter.structure(value, _CohereByType)
    return converter.structure(value, list[list[float]])


converter.register_structure_hook(list[list[float]] | _CohereByType, _structure_cohere_embeddings)
