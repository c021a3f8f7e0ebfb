"""A newcomer's script: the one-liners, OpenAI-style dict messages and a pydantic extractor.

tests/test_user_typecheck.py checks it with `mypy --strict` (and a copy with planted misuses,
which mypy must catch), then runs it against the loopback FakeProvider.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

import rig_sync
from rig_sync.providers import openai

CHAT = "openai:gpt-4o-mini"


class City(BaseModel):
    name: str = Field(description="The city's name")
    population: int = Field(ge=0)


def ask(question: str) -> str:
    return rig_sync.complete(CHAT, question, preamble="Be brief", max_tokens=64).text


def chat(history: list[dict[str, str]], question: str) -> str:
    conversation = [{"role": "system", "content": "Be brief"}, *history, {"role": "user", "content": question}]
    return rig_sync.complete(CHAT, conversation).text


def story() -> list[str]:
    return list(rig_sync.stream(CHAT, "Tell me a story").text_stream())


def vectors(texts: list[str]) -> list[list[float]]:
    return [e.vec for e in rig_sync.embed("openai:text-embedding-3-small", texts)]


def city(text: str) -> City:
    client = openai.Client()
    found = client.extractor(City, "gpt-4o-mini").retries(1).build().extract(text)
    population: int = found.population  # typed as the pydantic class's field
    assert population >= 0
    return found
