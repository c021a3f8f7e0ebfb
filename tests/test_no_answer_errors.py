"""One family for "the provider answered, but with no usable answer": every provider's such error is
a `rig_sync.errors.NoAnswerError`, the filtered and refused ones a `ContentBlockedError`, with the
same fields (`reason`, `text`, `safety`, `body`) and the same retry rule."""

from __future__ import annotations

import pickle

import pytest

from rig_sync import errors
from rig_sync.providers import anthropic, azure, cohere, gemini, ollama

FAMILY = [
    (cohere.GenerationError("x", provider="cohere", reason="TIMEOUT", partial_text="so far"), False, True),
    (gemini.GenerationError("x", provider="gemini", reason="MAX_TOKENS", text="so far"), False, False),
    (ollama.NoAnswerError("x", provider="ollama", reason="load"), False, False),
    (gemini.ContentBlockedError("x", provider="gemini", reason="SAFETY"), True, False),
    (anthropic.RefusalError("x", provider="anthropic", stop_details={"category": "cyber"}), True, False),
    (azure.ContentFilteredError("x", provider="azure"), True, False),
    (cohere.ContentBlockedError("x", status_code=498, provider="cohere", request_id="r1"), True, False),
]


@pytest.mark.parametrize(("err", "blocked", "retryable"), FAMILY, ids=[type(e).__module__.rsplit(".", 1)[-1]
                                                                       + "." + type(e).__name__ for e, *_ in FAMILY])
def test_every_no_answer_error_is_one_of_the_family(err: errors.NoAnswerError, blocked: bool, retryable: bool) -> None:
    assert isinstance(err, errors.NoAnswerError) and isinstance(err, errors.APIError)
    assert isinstance(err, errors.ContentBlockedError) is blocked
    assert err.is_retryable() is retryable
    assert isinstance(err.safety, tuple) and isinstance(err.text, str) and err.reason
    again = pickle.loads(pickle.dumps(err))  # crosses process pools intact
    assert type(again) is type(err) and again.reason == err.reason and again.text == err.text


def test_coheres_blocked_content_is_a_status_error_too() -> None:
    err = cohere.ContentBlockedError("deny-listed", status_code=498, provider="cohere", request_id="r1")
    assert isinstance(err, errors.APIStatusError) and err.status_code == 498 and err.request_id == "r1"
    assert err.reason == "blocked" and not err.is_retryable()
