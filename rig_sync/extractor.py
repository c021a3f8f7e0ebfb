"""Extractors: structured data out of text, as an instance of an attrs class, dataclass or
pydantic model (validated by pydantic, so its validators and constraints run).

    @attrs.frozen
    class Person:
        name: str
        age: int | None = None

    person = ExtractorBuilder(Person, model).retries(2).build().extract("Ada, 36, wrote programs")

The model is forced to call one tool, `submit`, whose parameters are the class's JSON Schema.
Output that does not fit (no call, wrong arguments) is answered with what was wrong and tried
again, up to `retries` more times; then `ExtractionError` carries the last raw output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar, cast

import attrs

from ._checks import whole
from ._schema import schema_of, structure, structure_problems, to_text, validate
from .completion import (
    CompletionModel,
    CompletionRequest,
    CompletionResponse,
    Document,
    RequestSettings,
    ToolChoice,
    ToolDefinition,
    Usage,
    model_label,
    prompt_message,
)
from .errors import ResponseDecodeError, RigError
from .message import Message, ToolResult

__all__ = ["ExtractorBuilder", "Extractor", "ExtractionResponse", "ExtractionError", "SUBMIT_TOOL"]

T = TypeVar("T")

SUBMIT_TOOL = "submit"
_PREAMBLE = (
    "You are an AI assistant whose purpose is to extract structured data from the provided text. "
    f"You have access to a `{SUBMIT_TOOL}` function that defines the structure of the data to extract. "
    f"Use the `{SUBMIT_TOOL}` function to submit the structured data. Fill out every field you can and "
    f"ALWAYS call the `{SUBMIT_TOOL}` function, even with default values."
)
_WRAPPED = "value"  # the one property a non-object type travels under (tool arguments are objects)


class ExtractionError(RigError):
    """The model gave no valid `submit` call within its attempts.

    `raw_output` is its last output (the submit arguments as JSON, or its text), `problems` what
    was wrong with it, `response` the last response (None if it could not be decoded), `history`
    every message exchanged, `usage` summed over every attempt.
    """

    def __init__(self, message: str, *, raw_output: str, problems: list[str], response: CompletionResponse | None,
                 history: list[Message], usage: Usage, attempts: int) -> None:
        super().__init__(message)
        self.raw_output = raw_output
        self.problems = problems
        self.response = response
        self.history = history
        self.usage = usage
        self.attempts = attempts


@attrs.frozen(eq=False)
class ExtractionResponse(Generic[T]):
    """The extracted value, usage summed over every attempt, and how many attempts it took."""

    data: T
    usage: Usage
    attempts: int


@attrs.frozen
class _Verdict(Generic[T]):
    ok: bool
    data: T | None = None
    raw: str = ""
    problems: list[str] = attrs.field(factory=list)
    feedback: Message | None = None


def _summary(cls: type[Any], model: CompletionModel, retries: int, documents: int, temperature: float | None,
             max_tokens: int | None) -> str:
    """What an extractor (or its builder) holds, for a repr: the class, the model, what is set."""
    settings = {"retries": retries or None, "documents": documents or None, "temperature": temperature,
                "max_tokens": max_tokens}
    return ", ".join([cls.__name__, model_label(model)] +
                     [f"{name}={value}" for name, value in settings.items() if value is not None])


class Extractor(Generic[T]):
    """Extracts instances of `cls`; immutable and thread-safe. Build with `ExtractorBuilder`."""

    def __init__(self, cls: type[T], model: CompletionModel, *, preamble: str, documents: tuple[Document, ...],
                 retries: int, temperature: float | None, max_tokens: int | None,
                 additional_params: dict[str, Any] | None) -> None:
        self.cls = cls
        self.model = model
        self.retries = retries
        schema = schema_of(cls)
        self._wrapped = schema.get("type") != "object" or "properties" not in schema
        if self._wrapped:
            schema = {"type": "object", "properties": {_WRAPPED: schema}, "required": [_WRAPPED],
                      "additionalProperties": False}
        self.submit = ToolDefinition(SUBMIT_TOOL, f"Submit the data extracted from the text ({cls.__name__}).",
                                     schema)
        self._template = CompletionRequest(
            chat_history=(Message.user("-"),),  # replaced per call
            preamble=preamble,
            documents=documents,
            tools=(self.submit,),
            tool_choice=ToolChoice("required"),
            temperature=temperature,
            max_tokens=max_tokens,
            additional_params=additional_params,
        )

    def __repr__(self) -> str:
        t = self._template
        summary = _summary(self.cls, self.model, self.retries, len(t.documents), t.temperature, t.max_tokens)
        return f"Extractor({summary})"

    def extract(self, text: str | Message) -> T:
        """An instance of the class, extracted from `text`."""
        return self.extract_with_usage(text).data

    def extract_with_usage(self, text: str | Message) -> ExtractionResponse[T]:
        """The instance, with the tokens used and the number of attempts."""
        messages = [prompt_message(text)]
        usage = Usage()
        attempts = self.retries + 1
        verdict: _Verdict[T] = _Verdict(False)
        response: CompletionResponse | None = None
        for attempt in range(1, attempts + 1):
            request = attrs.evolve(self._template, chat_history=messages)
            try:
                response = self.model.completion(request)
            except ResponseDecodeError as exc:
                if exc.field != "arguments":  # only a malformed submit call is the model's to fix
                    raise
                response = None
                problem = f"the {SUBMIT_TOOL} arguments were not valid JSON ({exc})"
                verdict = _Verdict(False, raw=str(exc.body or ""), problems=[problem],
                                   feedback=Message.user(f"Error: {problem}. Call {SUBMIT_TOOL} again with a JSON "
                                                         "object that fits its schema."))
            else:
                usage += response.usage
                messages.append(response.message())
                verdict = self._judge(response)
                if verdict.ok:
                    return ExtractionResponse(cast(T, verdict.data), usage, attempt)
            assert verdict.feedback is not None
            messages.append(verdict.feedback)
        messages.pop()  # the last feedback was never sent
        raise ExtractionError(
            f"could not extract {self.cls.__name__} after {attempts} attempt(s): " + "; ".join(verdict.problems),
            raw_output=verdict.raw, problems=verdict.problems, response=response, history=messages,
            usage=usage, attempts=attempts,
        )

    def _judge(self, response: CompletionResponse) -> _Verdict[T]:
        """The extracted value, or what was wrong and the message that tells the model so."""
        calls = response.tool_calls
        submits = [c for c in calls if c.name == SUBMIT_TOOL]
        if not submits:
            problem = f"the model did not call the {SUBMIT_TOOL} tool"
            note = f"You did not call the `{SUBMIT_TOOL}` tool. Call `{SUBMIT_TOOL}` with the extracted data."
            if not calls:
                return _Verdict(False, raw=response.text, problems=[problem], feedback=Message.user(note))
            results = [ToolResult(c.id, f"Error: no tool named {c.name!r}. {note}", c.call_id, True) for c in calls]
            return _Verdict(False, raw=to_text([{c.name: c.arguments} for c in calls]), problems=[problem],
                            feedback=Message.user(results))
        call = submits[0]
        if call.invalid_arguments is not None:  # cut off or no object: never judged as an empty one
            raw, problems = call.invalid_arguments, [f"the {SUBMIT_TOOL} arguments were not a JSON object"]
        else:
            raw, problems = to_text(call.arguments), self._problems(call.arguments)
        if not problems:
            try:
                data = structure(call.arguments[_WRAPPED] if self._wrapped else call.arguments, self.cls)
                return _Verdict(True, data=data, raw=raw)
            except Exception as exc:  # noqa: BLE001 - a value cattrs or pydantic refuses is one more thing to fix
                problems = structure_problems(exc, f"$.{_WRAPPED}" if self._wrapped else "$")
        error = f"Error: the arguments do not fit the schema: {'; '.join(problems)}. Call {SUBMIT_TOOL} again, fixed."
        results = [ToolResult(c.id, error if c is call else "Ignored: only one submit call is read.", c.call_id,
                              c is call) for c in calls]
        return _Verdict(False, raw=raw, problems=problems, feedback=Message.user(results))

    def _problems(self, arguments: Mapping[str, Any]) -> list[str]:
        return validate(dict(arguments), self.submit.parameters)


class ExtractorBuilder(RequestSettings, Generic[T]):
    """Fluent builder for an `Extractor` of `cls` on any `CompletionModel`. Its `preamble` is sent
    after the extractor's own instructions, which always come first."""

    def __init__(self, cls: type[T], model: CompletionModel) -> None:
        if not isinstance(model, CompletionModel):
            raise TypeError(f"ExtractorBuilder needs a CompletionModel, not {type(model).__name__}")
        if cls is None or not hasattr(cls, "__name__"):
            raise TypeError(f"ExtractorBuilder needs the class to extract (an attrs class, dataclass or pydantic "
                            f"model), not {cls!r}")
        schema_of(cls)  # fail now, not at the first extraction, if cls cannot be described
        self._cls = cls
        self._model = model
        self._documents: list[Document] = []
        self._retries = 0

    def context(self, text: str) -> ExtractorBuilder[T]:
        """A document sent with every extraction."""
        self._documents.append(Document(f"static_doc_{len(self._documents)}", text))
        return self

    def retries(self, retries: int) -> ExtractorBuilder[T]:
        """How many more times to ask after output that does not fit (default 0)."""
        self._retries = whole(retries, "retries")
        return self

    def __repr__(self) -> str:
        summary = _summary(self._cls, self._model, self._retries, len(self._documents), self._temperature,
                           self._max_tokens)
        return f"<ExtractorBuilder {summary}; not built: call .build()>"

    def build(self) -> Extractor[T]:
        preamble = _PREAMBLE if not self._preamble else (
            f"{_PREAMBLE}\n\n===== ADDITIONAL INSTRUCTIONS =====\n{self._preamble}")
        return Extractor(self._cls, self._model, preamble=preamble, documents=tuple(self._documents),
                         retries=self._retries, temperature=self._temperature, max_tokens=self._max_tokens,
                         additional_params=self._params)
