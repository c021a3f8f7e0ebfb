"""Views of the example Django project: prompt an agent, stream its reply, fan a prompt out.

    curl 'localhost:8000/ask?prompt=Hello'
    curl -N 'localhost:8000/stream?prompt=Tell+me+a+story'
    curl -X POST localhost:8000/fan-out -H 'Content-Type: application/json' -d '{"prompt": "Hi"}'
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable

from django.http import (  # type: ignore[import-untyped]
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)

from rig_sync.errors import RigError

from ..assistant import STREAM_HEADERS, Assistant, BadPrompt, clean_prompt

_lock = threading.Lock()


@functools.cache
def _build() -> Assistant:
    return Assistant.from_env()


def assistant() -> Assistant:
    """This process's assistant: built by the first request, then shared by every request and
    thread of the worker (gunicorn forks its workers first, so each one builds its own pools)."""
    with _lock:  # functools.cache alone could build twice when two first requests race
        return _build()


View = Callable[[HttpRequest], HttpResponse]


def _json_api(view: View) -> View:
    """GET (?prompt=) or POST (JSON body) only; a bad prompt is a 400, a provider failure a 502."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return JsonResponse({"error": "use GET or POST"}, status=405, headers={"Allow": "GET, POST"})
        try:
            return view(request)
        except BadPrompt as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        except RigError as exc:  # rig_sync's messages never carry API keys, so they are safe to show
            return JsonResponse({"error": f"{type(exc).__name__}: {exc}"}, status=502)

    return wrapped


def _prompt(request: HttpRequest) -> str:
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise BadPrompt("the request body is not JSON; send {\"prompt\": \"...\"}") from None
        return clean_prompt(body.get("prompt") if isinstance(body, dict) else None)
    return clean_prompt(request.GET.get("prompt"))


@_json_api
def ask(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"answer": assistant().ask(_prompt(request))})


@_json_api
def stream(request: HttpRequest) -> HttpResponse:
    # Django calls the body's close() when the response ends or the client disconnects.
    return StreamingHttpResponse(assistant().stream(_prompt(request)), content_type="text/plain; charset=utf-8",
                                 headers=STREAM_HEADERS)


@_json_api
def fan_out(request: HttpRequest) -> HttpResponse:
    result = assistant().fan_out(_prompt(request))
    return JsonResponse(result, status=200 if result["answers"] else 502)
