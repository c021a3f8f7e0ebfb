"""Offline test doubles for rig_sync users.

:class:`FakeProvider` is a real HTTP/1.1 server on 127.0.0.1 that speaks the
OpenAI wire format (chat completions, responses, embeddings, audio, images),
replies deterministically, records requests, and can be scripted
(:class:`Reply`) or made to fail (:class:`Fault`)::

    from rig_sync.testing import FakeProvider, Fault, Reply

    with FakeProvider() as fake:
        fake.script(Reply.text("hello"))
        fake.inject(Fault.status(429, retry_after=1))
        ...  # point your client at fake.base_url with fake.api_key

Importing this package starts nothing and imports only the standard library.
"""

from __future__ import annotations

from . import _anthropic as _anthropic  # registers the Anthropic routes
from . import _anthropic_batch as _anthropic_batch  # registers the Anthropic Message Batches routes
from . import _azure as _azure  # registers the Azure OpenAI routes
from . import _bedrock as _bedrock  # registers the Amazon Bedrock routes
from . import _cohere as _cohere  # registers the Cohere routes
from . import _gemini as _gemini  # registers the Gemini routes
from . import _gemini_batch as _gemini_batch  # registers the Gemini batch mode routes
from . import _ollama as _ollama  # registers the Ollama routes
from . import _openai as _openai  # registers the OpenAI routes
from . import _openai_batch as _openai_batch  # registers the OpenAI Files and Batch API routes
from . import _vertex as _vertex  # registers the Vertex AI routes (Gemini and Claude models)
from . import _voyage as _voyage  # registers the Voyage AI rerank route
from ._faults import Fault
from ._server import FakeProvider
from ._values import RecordedRequest, Reply, ToolCall

__all__ = ["FakeProvider", "Fault", "RecordedRequest", "Reply", "ToolCall"]
