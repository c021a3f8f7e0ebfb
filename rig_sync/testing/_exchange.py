"""One request's way through the fake: parsed and recorded, its route and dialect found, a queued
fault given its turn, the key and model checked, a scripted reply or the route's handler asked, and
the answer sent. Binds the HTTP server (``_http``), the route table (``_routes``) and the state.
"""

from __future__ import annotations

import json
import re
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ._dialect import ApiError, dumps
from ._routes import Call, Response, Route, dialect_for, find_route, requested_model
from ._values import RecordedRequest

if TYPE_CHECKING:
    from ._http import RequestHandler
    from ._server import FakeProvider
    from ._state import FakeState

__all__ = ["Exchange", "parse_multipart"]


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Split a multipart/form-data body into text fields and files."""
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if m is None:
        return form, files
    delim = b"--" + m.group(1).encode("latin-1")
    parser = BytesHeaderParser()
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        msg = parser.parsebytes(head + b"\r\n\r\n")
        name = msg.get_param("name", header="content-disposition")
        filename = msg.get_filename()
        if not isinstance(name, str):
            continue
        if filename is not None:
            files[name] = (filename, content)
        else:
            form[name] = content.decode("utf-8", "replace")
    return form, files


class Exchange:
    """The server's ``answer``: called on a connection's thread with each request's body."""

    def __init__(self, provider: FakeProvider, state: FakeState) -> None:
        self.provider = provider
        self.state = state

    def __call__(self, handler: RequestHandler, body: bytes) -> None:
        provider, state = self.provider, self.state
        url = urlsplit(handler.path)
        path = url.path
        headers: dict[str, str] = {}
        for k, v in handler.headers.items():
            lk = k.lower()
            headers[lk] = f"{headers[lk]}, {v}" if lk in headers else v
        parsed: Any = None
        json_error = False
        ctype = headers.get("content-type", "")
        form: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        if body and "multipart/form-data" in ctype:
            form, files = parse_multipart(ctype, body)
        elif body:
            try:
                parsed = json.loads(body)
            except ValueError:
                json_error = True
        seq, request_id = state.next_request_id()
        req = RecordedRequest(
            method=handler.command,
            path=path,
            headers=headers,
            body=body,
            json=parsed,
            form=form,
            files=files,
            query=dict(parse_qsl(url.query)),
            request_id=request_id,
        )
        if provider.record:
            state.record(req)

        found = find_route(handler.command, path)
        dialect = found[0].dialect if found else dialect_for(path)
        fault = state.take_fault(path)
        if fault is not None and fault.act(handler, dialect, request_id):
            return

        handler.latency()
        if found is None:
            err = ApiError(404, f"Invalid URL ({handler.command} {path})", code="not_found")
            body = dumps(dialect.error_body(err.status, err.message, err.type, err.code, err.param))
            handler.send_full(err.status, body, "application/json", (), request_id)
            return
        rt, match = found
        try:
            resp = self._run_route(rt, match, req, seq, json_error)
        except ApiError as err:
            resp = Response(
                status=err.status,
                body=dumps(rt.dialect.error_body(err.status, err.message, err.type, err.code, err.param)),
            )
        if fault is None:
            handler.send(resp, request_id)
        else:
            fault.deliver(handler, resp, dialect, request_id)

    def _run_route(
        self,
        rt: Route,
        match: re.Match[str],
        req: RecordedRequest,
        seq: int,
        json_error: bool,
    ) -> Response:
        provider = self.provider
        key = rt.dialect.extract_key(req)
        if not key or (provider.require_key is not None and key != provider.require_key):
            shown = (key[:3] + "***" + key[-2:]) if key and len(key) > 6 else (key or "")
            msg = (
                f"Incorrect API key provided: {shown}."
                if key
                else "You didn't provide an API key. You need to provide your API key "
                "in an Authorization header using Bearer auth."
            )
            raise ApiError(401, msg, "invalid_request_error", "invalid_api_key")
        if rt.expects_json and json_error:
            raise ApiError(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
            )
        model = requested_model(req, match)
        if provider.models is not None and model is not None and model not in provider.models:
            raise rt.dialect.unknown_model(model, req)  # before a scripted reply is used up
        reply = self.state.take_reply(req.path, rt.conversational)
        if reply is not None and reply.kind == "json":
            if isinstance(reply.body, bytes):
                raw = reply.body
            elif isinstance(reply.body, str):
                raw = reply.body.encode("utf-8")
            else:
                raw = dumps(reply.body)
            return Response(status=reply.status, body=raw, headers=list(reply.headers))
        return rt.handler(Call(request=req, match=match, reply=reply, seq=seq, provider=provider))
