"""The settings every request builder shares (`RequestSettings`): the same names, the same checks
and the same meaning on `completion_request(...)`, `AgentBuilder` and `ExtractorBuilder`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from conftest import RecordingModel

from rig_sync.agent import AgentBuilder
from rig_sync.completion import CompletionRequest, RequestSettings
from rig_sync.errors import InvalidRequestError, InvalidTypeError, RigError
from rig_sync.extractor import ExtractorBuilder


@attrs.define
class Person:
    name: str


def via_request(model: RecordingModel, configure: Callable[[Any], Any]) -> CompletionRequest:
    configure(model.completion_request("hi")).send()
    return model.requests[-1]


def via_agent(model: RecordingModel, configure: Callable[[Any], Any]) -> CompletionRequest:
    configure(AgentBuilder(model)).build().prompt("hi")
    return model.requests[-1]


BUILDERS = {"request": via_request, "agent": via_agent}


@pytest.mark.parametrize("send", BUILDERS.values(), ids=BUILDERS.keys())
def test_the_settings_reach_the_request_alike(send: Callable[..., CompletionRequest]) -> None:
    sent = send(RecordingModel(), lambda b: b.preamble("first").preamble("second").append_preamble("more")
                .temperature(0.5).max_tokens(7).additional_params({"a": {"x": 1}})
                .additional_params({"a": {"y": 2}}))
    assert sent.preamble == "second\nmore"  # preamble replaces, append_preamble adds a line
    assert (sent.temperature, sent.max_tokens) == (0.5, 7)
    assert sent.additional_params == {"a": {"x": 1, "y": 2}}  # deep-merged


def builders() -> list[RequestSettings]:
    model = RecordingModel()
    return [model.completion_request("hi"), AgentBuilder(model), ExtractorBuilder(Person, model)]


@pytest.mark.parametrize("index", range(3), ids=["request", "agent", "extractor"])
def test_bad_settings_are_refused_alike(index: int) -> None:
    builder = builders()[index]
    assert isinstance(builder, RequestSettings)
    for call, kind in ((lambda: builder.preamble(1), InvalidTypeError),  # type: ignore[arg-type]
                       (lambda: builder.append_preamble(None), InvalidTypeError),  # type: ignore[arg-type]
                       (lambda: builder.temperature(math.nan), InvalidRequestError),
                       (lambda: builder.temperature(2.5), InvalidRequestError),
                       (lambda: builder.max_tokens(0), InvalidRequestError),
                       (lambda: builder.max_tokens(True), InvalidRequestError)):  # type: ignore[arg-type]
        with pytest.raises(kind) as info:
            call()
        assert isinstance(info.value, RigError)
    assert issubclass(InvalidTypeError, TypeError)  # as a wrong type was before


def test_the_extractors_own_instructions_come_first_and_its_preamble_follows() -> None:
    model = RecordingModel()
    builder = ExtractorBuilder(Person, model).preamble("Names are Welsh.").preamble("Names are Breton.")
    extractor = builder.temperature(0.1).build()
    with pytest.raises(RigError):
        extractor.extract("Anna")  # "ok" is no extraction; the request was still sent
    sent = model.requests[0]
    assert sent.preamble is not None
    own, _, added = sent.preamble.partition("===== ADDITIONAL INSTRUCTIONS =====")
    assert own.strip() and "Breton" in added and "Welsh" not in sent.preamble
    assert sent.temperature == 0.1
