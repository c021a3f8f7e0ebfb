"""Gemini `generateContent` / `streamGenerateContent`: wire format, parsing, completion model.

Finish reasons are Gemini's own (`STOP`, `MAX_TOKENS`, …). An answer Gemini blocked (the
prompt, or the candidate for SAFETY, RECITATION, …) raises `ContentBlockedError`; an answer that
stopped with nothing in it (MALFORMED_FUNCTION_CALL, MAX_TOKENS spent thinking, …) raises
`GenerationError`. Neither ever passes for an empty string; both carry the safety ratings
(`.safety`, as `response.safety` would have them) and the block or finish reason (`.reason`).

An error object mid-stream (`data: {"error": …}`, an `error: {json}` line as llama.cpp's server
sends, or the JSON Vertex AI appends outside the SSE framing) raises `StreamError` naming the
server's message and its status or type.

Gemini function calls carry no id in most responses, so one is made from the function name
(`name`, then `name_2`, … within one answer); an id Gemini does send is kept as `call_id` and
sent back with the call and its result. A thought signature travels as a `Reasoning` part with
empty text placed just before the part that carried it, and goes back on that part.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from .. import _json, _wire, errors, sse
from ..client.capabilities import Prepared
from ..completion import (
    BaseCompletionModel,
    Citation,
    CompletionRequest,
    CompletionResponse,
    SafetyResult,
    ToolChoice,
    Usage,
    deep_merge,
)
from ..errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    NoAnswerError,
    ResponseDecodeError,
    StreamError,
    UnsupportedFeature,
)
from ..http import Conventions
from ..message import AssistantContent, Audio, DocumentContent, Image, Part, Reasoning, Text, ToolCall, ToolResult
from ..sse import SSEEvent, iter_lines
from ..streaming import (
    FinalResponse,
    ReasoningChunk,
    StreamChunk,
    StreamingCompletionResponse,
    TextBuffer,
    TextChunk,
    ToolCallChunk,
    parse_tool_call,
)
from ._annotations import gemini_citations, gemini_safety
from ._common import model_in_path, tool_names, usage_of
from ._gemini_schema import gemini_schema
from ._model import ModelView


def _first_error(body: Any) -> Any:
    """Gemini's streaming endpoint wraps its error body in a list."""
    return body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else body


def _error_class(status: int, code: str | None, body: Any) -> type[APIError] | None:
    # Google answers a bad key with 400 INVALID_ARGUMENT, naming the reason API_KEY_INVALID.
    return AuthenticationError if status == 400 and "API_KEY_INVALID" in str(body) else None


CONVENTIONS = Conventions(error_body=_first_error, error_class=_error_class,
                          secret_headers=frozenset({"x-goog-api-key"}))

__all__ = ["CompletionModel", "GenerationError", "ContentBlockedError", "AUDIO_MIME_TYPES", "converter",
           "model_path", "ModelPaths", "parse_response", "WireContent", "WirePart", "WireBlob"]

converter = _wire.make_converter()


# The audio formats Gemini accepts inline, by file extension / `Audio.format`.
AUDIO_MIME_TYPES = {
    "mp3": "audio/mp3", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "aac": "audio/aac",
    "aiff": "audio/aiff", "aif": "audio/aiff",
}

# Finish reasons that mean Gemini's filters withheld (part of) the answer.
BLOCKED_FINISHES = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})


class GenerationError(NoAnswerError):
    """Gemini finished without a usable answer. `reason` is its finish (or block) reason;
    `safety` the safety ratings of the prompt and the answer as `SafetyResult`s, as
    `CompletionResponse.safety` holds them (`safety_ratings`: the answer's, or the blocked
    prompt's, as sent); `text` holds whatever text came before it stopped; `body` the raw
    response."""

    def __init__(self, message: str, *, provider: str, reason: str | None, finish_message: str | None = None,
                 safety_ratings: Sequence[Any] = (), text: str = "", body: Any = None,
                 safety: Iterable[SafetyResult] = ()) -> None:
        super().__init__(message, provider=provider, reason=reason, text=text, safety=safety, body=body)
        self.finish_message = finish_message
        self.safety_ratings = list(safety_ratings)


class ContentBlockedError(GenerationError, errors.ContentBlockedError):
    """Gemini's safety or policy filters blocked the prompt or the answer (SAFETY, RECITATION, …):
    `reason` says which (`promptFeedback.blockReason` or the finish reason), `safety` how it rated
    each category (`target` "prompt" or "answer"; `message` its `blockReasonMessage` or
    `finishMessage`). The categories it rated high are named in the message too."""


# --- wire format ----------------------------------------------------------------------------------


@attrs.define
class WireBlob:
    mimeType: str
    data: str


@attrs.define
class _FileData:
    fileUri: str
    mimeType: str | None = None


@attrs.define
class _FunctionCall:
    name: str
    args: Any = attrs.field(factory=dict)  # an object; anything else is kept by `parse_tool_call`
    id: str | None = None


@attrs.define
class _FunctionResponse:
    name: str
    response: dict[str, Any]
    id: str | None = None


@attrs.define
class WirePart:
    text: str | None = None
    thought: bool | None = None
    thoughtSignature: str | None = None
    inlineData: WireBlob | None = None
    fileData: _FileData | None = None
    functionCall: _FunctionCall | None = None
    functionResponse: _FunctionResponse | None = None
    executableCode: dict[str, Any] | None = None
    codeExecutionResult: dict[str, Any] | None = None


@attrs.define
class WireContent:
    parts: list[WirePart] = attrs.field(factory=list)
    role: str | None = None


@attrs.define
class _FunctionDeclaration:
    name: str
    description: str
    parameters: dict[str, Any] | None = None


@attrs.define
class _Tool:
    functionDeclarations: list[_FunctionDeclaration]


@attrs.define
class _FunctionCallingConfig:
    mode: str
    allowedFunctionNames: list[str] | None = None


@attrs.define
class _ToolConfig:
    functionCallingConfig: _FunctionCallingConfig


@attrs.define
class _GenerationConfig:
    temperature: float | None = None
    maxOutputTokens: int | None = None


@attrs.define
class _Request:
    contents: list[WireContent]
    systemInstruction: WireContent | None = None
    generationConfig: _GenerationConfig | None = None
    tools: list[_Tool] | None = None
    toolConfig: _ToolConfig | None = None


@attrs.define
class _Candidate:
    content: WireContent | None = None
    finishReason: str | None = None
    finishMessage: str | None = None
    safetyRatings: list[dict[str, Any]] | None = None
    index: int = 0
    citationMetadata: Any = None  # side data, read tolerantly (`_annotations`)
    groundingMetadata: Any = None


@attrs.define
class _PromptFeedback:
    blockReason: str | None = None
    blockReasonMessage: str | None = None
    safetyRatings: list[dict[str, Any]] | None = None


@_wire.lenient
@attrs.define
class _UsageMetadata:
    promptTokenCount: _wire.Tokens = None
    candidatesTokenCount: _wire.Tokens = None
    totalTokenCount: _wire.Tokens = None
    cachedContentTokenCount: _wire.Tokens = None
    thoughtsTokenCount: _wire.Tokens = None
    toolUsePromptTokenCount: _wire.Tokens = None


@attrs.define
class _Response:
    candidates: list[_Candidate] = attrs.field(factory=list)
    promptFeedback: _PromptFeedback | None = None
    usageMetadata: _UsageMetadata | None = None
    modelVersion: str | None = None
    responseId: str | None = None


def model_path(client: Any, model: str, method: str) -> str:
    """`/v1beta/models/<model>:<method>`, for every capability; a name with a slash
    (`tunedModels/x`, `models/gemini-2.0-flash`) is the resource itself (`model_in_path` refuses
    one that would climb out of it)."""
    resource = model if "/" in model else f"models/{model}"
    return f"/{client.api_version}/{model_in_path(client.provider, resource, nested=True)}:{method}"


# --- request --------------------------------------------------------------------------------------


def _user_part(part: Part, names: dict[str, str], provider: str) -> WirePart:
    if isinstance(part, Text):
        return WirePart(text=part.text)
    if isinstance(part, Image):
        if part.is_url:
            return WirePart(fileData=_FileData(part.data, part.media_type))
        return WirePart(inlineData=WireBlob(part.media_type or "image/png", part.data))
    if isinstance(part, Audio):
        mime = AUDIO_MIME_TYPES.get(part.format.lower())
        if mime is None:
            raise UnsupportedFeature(f"{provider}: audio format {part.format!r} is not one Gemini reads inline "
                                     f"({', '.join(sorted(AUDIO_MIME_TYPES))})")
        return WirePart(inlineData=WireBlob(mime, part.data))
    if isinstance(part, DocumentContent):
        if part.is_url:
            return WirePart(fileData=_FileData(part.data, part.media_type))
        return WirePart(inlineData=WireBlob(part.media_type, part.data))
    if isinstance(part, ToolResult):
        name = names.get(part.id)
        if name is None:
            raise InvalidRequestError(f"{provider}: tool result {part.id!r} answers no tool call in the chat history; "
                                      "Gemini needs the function name, so keep the assistant's call in the history")
        response = {"error": part.content} if part.is_error else {"output": part.content}
        return WirePart(functionResponse=_FunctionResponse(name, response, part.call_id))
    raise UnsupportedFeature(f"{provider}: cannot send {type(part).__name__} in a user message")


def _model_parts(content: Iterable[Part], provider: str) -> list[WirePart]:
    parts: list[WirePart] = []
    signature: str | None = None  # from an empty Reasoning: it belongs on the next part
    for item in content:
        if isinstance(item, Reasoning) and not item.text:
            signature = item.signature or signature
            continue
        if isinstance(item, Reasoning):
            part = WirePart(text=item.text, thought=True, thoughtSignature=item.signature)
        elif isinstance(item, Text):
            part = WirePart(text=item.text)
        elif isinstance(item, ToolCall):
            part = WirePart(functionCall=_FunctionCall(item.name, dict(item.arguments), item.call_id))
        else:
            raise UnsupportedFeature(f"{provider}: cannot send {type(item).__name__} in an assistant message")
        if signature is not None:
            part.thoughtSignature, signature = signature, None
        parts.append(part)
    if signature is not None:
        parts.append(WirePart(text="", thoughtSignature=signature))
    return parts


def _contents(request: CompletionRequest, provider: str) -> list[WireContent]:
    names = tool_names(request)  # functionResponse wants the function's name; our ToolResult has the call's id
    out: list[WireContent] = []
    for message in request.messages_with_documents():
        if message.role == "assistant":
            role, parts = "model", _model_parts(message.content, provider)
        else:
            role, parts = "user", [_user_part(p, names, provider) for p in message.content]
        if out and out[-1].role == role:
            out[-1].parts.extend(parts)  # turns alternate in Gemini's history: same-role neighbours merge
        else:
            out.append(WireContent(parts, role))
    return out


def _tool_config(choice: ToolChoice) -> _ToolConfig:
    if choice.mode == "tool":
        return _ToolConfig(_FunctionCallingConfig("ANY", [choice.name or ""]))
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.mode]
    return _ToolConfig(_FunctionCallingConfig(mode))


def _declaration(name: str, description: str, parameters: dict[str, Any]) -> _FunctionDeclaration:
    schema = gemini_schema(parameters, name)
    # Gemini refuses an OBJECT without properties: a tool without arguments declares none.
    if schema.get("type") == "object" and not schema.get("properties"):
        return _FunctionDeclaration(name, description)
    return _FunctionDeclaration(name, description, schema)


def generate_body(request: CompletionRequest, provider: str) -> dict[str, Any]:
    """The JSON body of one generateContent request."""
    if not isinstance(request, CompletionRequest):
        raise InvalidRequestError(f"expected a CompletionRequest, got {type(request).__name__}")
    config = None
    if request.temperature is not None or request.max_tokens is not None:
        config = _GenerationConfig(request.temperature, request.max_tokens)
    tools = [_Tool([_declaration(t.name, t.description, t.parameters) for t in request.tools])]
    body = _wire.encode(
        converter,
        _Request(
            contents=_contents(request, provider),
            systemInstruction=WireContent([WirePart(text=request.preamble)]) if request.preamble else None,
            generationConfig=config,
            tools=tools if request.tools else None,
            toolConfig=_tool_config(request.tool_choice) if request.tools and request.tool_choice else None,
        ),
    )
    return deep_merge(body, request.additional_params)


# --- response -------------------------------------------------------------------------------------


def usage_from(usage: _UsageMetadata | None) -> Usage:
    """Tool-use prompt tokens count as input and thinking tokens as output, so the parts add up
    to Gemini's total (both are billed)."""
    if usage is None:
        return Usage()
    inp = _known_sum(usage.promptTokenCount, usage.toolUsePromptTokenCount)
    out = _known_sum(usage.candidatesTokenCount, usage.thoughtsTokenCount)
    return usage_of(inp, out, usage.totalTokenCount, cached=usage.cachedContentTokenCount,
                    reasoning=usage.thoughtsTokenCount)


def _known_sum(first: int | None, second: int | None) -> int | None:
    return first if second is None else second if first is None else first + second


@attrs.define
class _Run:
    """Consecutive text (or thought) pieces, joined into one part."""

    thought: bool
    pieces: TextBuffer = attrs.field(factory=TextBuffer)
    signature: str | None = None


def _code_text(part: WirePart) -> str | None:
    """Code execution parts as Markdown, so the code and its output stay readable in the answer."""
    if part.executableCode is not None:
        language = str(part.executableCode.get("language", "")).lower()
        return f"\n```{language}\n{part.executableCode.get('code', '')}\n```\n"
    if part.codeExecutionResult is not None:
        return f"\n```output\n{part.codeExecutionResult.get('output', '')}\n```\n"
    return None


class _Answer:
    """The assistant content of one candidate, built part by part (a stream feeds it chunk by chunk)."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._items: list[_Run | Reasoning | ToolCall] = []
        self._ids: set[str] = set()

    def add(self, part: WirePart) -> StreamChunk | None:
        signature = part.thoughtSignature
        if part.functionCall is not None:
            if signature:
                self._items.append(Reasoning("", signature))
            call = self._tool_call(part.functionCall)
            self._items.append(call)
            return ToolCallChunk(call)
        text = part.text if part.text is not None else _code_text(part)
        if text is None:
            if part.inlineData is not None or part.fileData is not None:
                kind = part.inlineData.mimeType if part.inlineData else "a file"
                raise ResponseDecodeError(f"{self._provider} answered with {kind} data, which a completion "
                                          "response cannot carry", provider=self._provider, field="inlineData")
            return None  # a part of a kind this version does not know: nothing to show
        thought = bool(part.thought)
        last = self._items[-1] if self._items else None
        if not (isinstance(last, _Run) and last.thought == thought):
            last = _Run(thought)
            self._items.append(last)
        last.pieces.append(text)
        if signature and thought:
            last.signature = signature
        elif signature:
            self._items.insert(len(self._items) - 1, Reasoning("", signature))
        if not text:
            return None
        return ReasoningChunk(text) if thought else TextChunk(text)

    def _tool_call(self, fc: _FunctionCall) -> ToolCall:
        if not fc.name:
            raise ResponseDecodeError(f"{self._provider} sent a function call without a name",
                                      provider=self._provider, field="functionCall.name")
        call_id = fc.id
        if not call_id:
            call_id, n = fc.name, 1
            while call_id in self._ids:
                n += 1
                call_id = f"{fc.name}_{n}"
        self._ids.add(call_id)
        return parse_tool_call(call_id, fc.name, fc.args, self._provider, fc.id or None)

    def content(self) -> tuple[AssistantContent, ...]:
        out: list[AssistantContent] = []
        for item in self._items:
            if not isinstance(item, _Run):
                out.append(item)
            elif item.thought:
                out.append(Reasoning("".join(item.pieces), item.signature))
            elif any(item.pieces):
                out.append(Text("".join(item.pieces)))
        return tuple(out)


def _ratings(ratings: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return list(ratings or ())


def _flagged(safety: Iterable[SafetyResult], target: str) -> str:
    """The ratings worth naming in an error's message: those marked blocked, else those rated
    MEDIUM or HIGH (", "-joined; "" if none)."""
    rated = [r for r in safety if r.target == target]
    named = [r for r in rated if r.blocked] or [r for r in rated if r.level in ("MEDIUM", "HIGH")]
    return ", ".join(f"{r.category}: {r.level or 'blocked'}" for r in named)


def _blocked_prompt(feedback: _PromptFeedback | None, body: Any, provider: str) -> ContentBlockedError:
    reason = feedback.blockReason if feedback else None
    said = feedback.blockReasonMessage if feedback else None
    safety = _safety(None, feedback)
    flagged = _flagged(safety, "prompt")
    detail = f" ({said})" if said else ""
    return ContentBlockedError(
        f"{provider} blocked the prompt ({reason or 'no reason given'}{'; ' + flagged if flagged else ''}){detail} "
        "and returned no answer",
        provider=provider, reason=reason, finish_message=said,
        safety_ratings=_ratings(feedback.safetyRatings if feedback else None), body=body, safety=safety,
    )


def _check_finish(candidate: _Candidate, content: tuple[AssistantContent, ...], body: Any,
                  provider: str, safety: list[SafetyResult]) -> None:
    """Raise for a blocked answer, or for one that stopped with nothing in it."""
    reason = candidate.finishReason
    text = "".join(p.text for p in content if isinstance(p, Text))
    note = f": {candidate.finishMessage}" if candidate.finishMessage else ""
    if reason in BLOCKED_FINISHES:
        flagged = _flagged(safety, "answer")
        raise ContentBlockedError(
            f"{provider} stopped the answer for {reason}{f' ({flagged})' if flagged else ''}{note}"
            + (" (partial text kept on .text)" if text else ""),
            provider=provider, reason=reason, finish_message=candidate.finishMessage,
            safety_ratings=_ratings(candidate.safetyRatings), text=text, body=body, safety=safety,
        )
    answered = bool(text) or any(isinstance(p, ToolCall) for p in content)
    if not answered and reason not in (None, "STOP"):
        hint = "; thinking may have used the whole budget, raise max_tokens" if reason == "MAX_TOKENS" else ""
        raise GenerationError(f"{provider} finished with {reason} and no answer{note}{hint}", provider=provider,
                              reason=reason, finish_message=candidate.finishMessage,
                              safety_ratings=_ratings(candidate.safetyRatings), body=body, safety=safety)


def parse_response(data: Any, provider: str) -> CompletionResponse:
    """A generateContent answer as a CompletionResponse (blocked or empty answers raise)."""
    said = _stream_error(data)
    if said is not None:  # an error object sent with 200 (a proxy, or the API itself): not a blocked prompt
        raise ResponseDecodeError(f"{provider} answered with an error instead of a response: {said}",
                                  provider=provider, field="error", body=data)
    resp = _wire.decode(converter, data, _Response, provider)
    if not resp.candidates or (resp.promptFeedback and resp.promptFeedback.blockReason):
        raise _blocked_prompt(resp.promptFeedback, data, provider)
    candidate = resp.candidates[0]
    answer = _Answer(provider)
    for part in candidate.content.parts if candidate.content else ():
        answer.add(part)
    content = answer.content()
    safety = _safety(candidate, resp.promptFeedback)
    _check_finish(candidate, content, data, provider, safety)
    return CompletionResponse(content, usage_from(resp.usageMetadata), data, candidate.finishReason,
                              resp.responseId, resp.modelVersion, _citations(candidate), safety)


def _citations(candidate: _Candidate) -> list[Citation]:
    return gemini_citations(candidate.citationMetadata, candidate.groundingMetadata)


def _safety(candidate: _Candidate | None, feedback: _PromptFeedback | None) -> list[SafetyResult]:
    """The ratings of the prompt (`promptFeedback`) and of the answer, with its `finishMessage`."""
    prompt = gemini_safety(feedback.safetyRatings, "prompt", feedback.blockReasonMessage) if feedback else []
    if candidate is None:
        return prompt
    return prompt + gemini_safety(candidate.safetyRatings, "answer", candidate.finishMessage)


# --- streaming ------------------------------------------------------------------------------------


def sse_events(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Gemini's `alt=sse` framing: `data:` events, each one complete JSON object.

    Unlike generic SSE, a last event without its closing blank line is still delivered (recorded
    streams end so; a cut-off one fails to parse as JSON instead), and lines outside the SSE
    framing (an error object Vertex AI appends mid-stream) come as one event named "raw". An
    `error: …` line (llama.cpp's server fails a stream so) comes at once as an event named "error".
    """
    data: list[bytes] = []
    raw: list[bytes] = []
    held, limit = 0, sse.MAX_EVENT_BYTES  # bytes in `data` and `raw`: bounded like any SSE event
    for line in iter_lines(chunks, max_bytes=limit):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif not line.strip():
            if data:
                yield SSEEvent(None, b"\n".join(data).decode("utf-8", "replace"))
                held, data = sum(map(len, raw)), []
            continue
        elif line[:1] == b":" or line.startswith((b"event:", b"id:", b"retry:")):
            continue
        elif line.startswith(b"error:"):
            yield SSEEvent("error", (line[7:] if line[6:7] == b" " else line[6:]).decode("utf-8", "replace"))
            continue
        else:
            raw.append(line)
        held += len(line)
        if held > limit:
            raise sse.event_too_long(limit)
    if data:
        yield SSEEvent(None, b"\n".join(data).decode("utf-8", "replace"))
    if raw:
        yield SSEEvent("raw", b"\n".join(raw).decode("utf-8", "replace"))


def _stream_error(data: Any) -> str | None:
    """The message of an error object (`{"error": …}`, or Gemini's list-wrapped `[{"error": …}]`)."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict) or "error" not in data:
        return None
    return _error_said(data["error"])


def _error_said(err: Any) -> str:
    """An error's message with its kind: Google's `status` ("INTERNAL") or an OpenAI-style `type`."""
    if not isinstance(err, dict):
        return str(err)[:500] or "no message"
    message = err.get("message")
    said = message if isinstance(message, str) and message else str(err)[:500]
    kind = next((err[k] for k in ("status", "type") if isinstance(err.get(k), str) and err[k]), None)
    return f"{said} ({kind})" if kind else said


def parse_stream(events: Iterator[SSEEvent], provider: str) -> Iterator[StreamChunk]:
    """Chunks of a streamed answer. Complete once a chunk carried a finish reason; a stream that
    ends before that raises `StreamError`, a blocked one `ContentBlockedError`."""
    answer = _Answer(provider)
    usage: _UsageMetadata | None = None
    last: _Candidate | None = None
    rated: _Candidate | None = None  # the latest candidate with safety ratings
    feedback: _PromptFeedback | None = None
    citations: list[Citation] = []
    rid = model = None
    for event in events:
        if event.event == "error":  # an `error: {json}` line: `{"error": {…}}` or the error object itself
            try:
                said: Any = _json.loads(event.data)
            except _json.JSONDecodeError:
                said = event.data
            raise StreamError(f"{provider} reported an error mid-stream: {_stream_error(said) or _error_said(said)}",
                              provider=provider, body=said)
        try:
            data = _json.loads(event.data)
        except _json.JSONDecodeError:
            what = "text outside its SSE events" if event.event == "raw" else "a stream event that is not JSON"
            raise StreamError(f"{provider} sent {what} (cut off?): {event.data[:200]!r}", provider=provider,
                              body=event.data, retryable=event.event != "raw") from None
        said = _stream_error(data)
        if said is not None or event.event == "raw":
            raise StreamError(f"{provider} reported an error mid-stream: {said or str(data)[:300]}",
                              provider=provider, body=data)
        chunk = _wire.decode(converter, data, _Response, provider)
        if chunk.promptFeedback and chunk.promptFeedback.blockReason:
            raise _blocked_prompt(chunk.promptFeedback, data, provider)
        usage = chunk.usageMetadata or usage
        feedback = chunk.promptFeedback or feedback
        rid = rid or chunk.responseId
        model = model or chunk.modelVersion
        for candidate in chunk.candidates:
            if candidate.index != 0:
                continue  # several candidates: the first is the answer, as unstreamed
            citations += _citations(candidate)
            rated = candidate if candidate.safetyRatings else rated
            for part in candidate.content.parts if candidate.content else ():
                piece = answer.add(part)
                if piece is not None:
                    yield piece
            if candidate.finishReason:
                last = candidate
    if last is None:
        raise StreamError(f"{provider} stream ended before a finish reason: the answer is incomplete",
                          provider=provider, retryable=True)
    content = answer.content()
    if rated is not None and last.safetyRatings is None:
        last = attrs.evolve(last, safetyRatings=rated.safetyRatings)
    safety = _safety(last, feedback)
    _check_finish(last, content, None, provider, safety)
    yield FinalResponse(CompletionResponse(content, usage_from(usage), None, last.finishReason, rid, model,
                                           citations, safety))


# --- model ----------------------------------------------------------------------------------------


class ModelPaths(ModelView):
    """Where a Gemini model's methods are: `method_path("generateContent")`. Vertex AI serves the same
    wire under its own paths (project, location, publisher): its models override this one method."""

    def method_path(self, method: str) -> str:
        return model_path(self.client, self.model, method)


class CompletionModel(ModelPaths, BaseCompletionModel):
    """A Gemini model on `generateContent` (and `streamGenerateContent?alt=sse`)."""

    def prepare(self, request: CompletionRequest) -> Prepared:
        """The call `completion(request)` sends (a batch job's request holds its body)."""
        return Prepared(self.method_path("generateContent"), generate_body(request, self.provider), parse_response)

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        return self._complete_prepared(self.prepare(request))

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        body = generate_body(request, self.provider)
        path = self.method_path("streamGenerateContent")
        return self._stream(path, body, parse_stream, params={"alt": "sse"}, framing=sse_events,
                            raw=request.keep_raw_events)
