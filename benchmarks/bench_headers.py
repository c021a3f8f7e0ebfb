"""Per-call CPU of a chat completion whose answer carries a real provider's ~20 headers, with the
lean header read (`rig_sync.http._headers.LeanResponse`) and with http.client's standard one
(the email package's parser), interleaved in one run; raw `requests` beside both.

The answer's headers are OpenAI's: the recorded ones of tests/fixtures/index.json (version,
processing time, six rate-limit headers) and the transport headers every OpenAI answer carries
(date, request id, Cloudflare's, cookies, HSTS). A small server in another process sends the
same bytes every time, so only the client's work differs.
"""

from __future__ import annotations

import http.client
import statistics
import sys
import time

import requests
from _common import HEADER, Row, child_server

from rig_sync.http import _headers, _pool
from rig_sync.providers import openai

SERVER = r'''
import socket, sys, threading
body = (b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":'
        b'[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}')
head = "\r\n".join([
    "HTTP/1.1 200 OK", "Date: Tue, 15 Jul 2025 10:00:00 GMT", "Content-Type: application/json",
    f"Content-Length: {len(body)}", "Connection: keep-alive", "access-control-expose-headers: X-Request-ID",
    "openai-organization: user-abc123", "openai-processing-ms: 745", "openai-project: proj_abc123",
    "openai-version: 2020-10-01", "x-envoy-upstream-service-time: 748", "x-ratelimit-limit-requests: 30000",
    "x-ratelimit-limit-tokens: 150000000", "x-ratelimit-remaining-requests: 29999",
    "x-ratelimit-remaining-tokens: 149999972", "x-ratelimit-reset-requests: 2ms", "x-ratelimit-reset-tokens: 0s",
    "x-request-id: req_0123456789abcdef0123456789abcdef",
    "strict-transport-security: max-age=31536000; includeSubDomains; preload", "cf-cache-status: DYNAMIC",
    "set-cookie: __cf_bm=abc; path=/; expires=Tue, 15-Jul-25 10:30:00 GMT; domain=.api.openai.com; HttpOnly; Secure",
    "set-cookie: _cfuvid=def; path=/; domain=.api.openai.com; HttpOnly; Secure; SameSite=None",
    "X-Content-Type-Options: nosniff", "Server: cloudflare", "CF-RAY: 95f0a1b2c3d4e5f6-AMS",
    'alt-svc: h3=":443"; ma=86400', "", ""]).encode("latin-1")
def serve(conn):
    buf = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buf:
                got = conn.recv(65536)
                if not got:
                    return
                buf += got
            top, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in top.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                buf += conn.recv(65536)
            buf = buf[length:]
            conn.sendall(head + body)
listener = socket.create_server(("127.0.0.1", 0))
print(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", flush=True)
def accept():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
sys.stdin.read()
'''

def run(rounds: int = 12, calls: int = 200) -> list[Row]:
    connection_class = _pool.SCOPED_POOLS["http"].ConnectionCls
    with child_server(["-c", SERVER]) as (_, base_url):
        model = openai.Client("sk-bench", base_url=base_url).completion_model("gpt-4o-mini")
        session = requests.Session()
        payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}

        def ours() -> None:
            for _ in range(calls):
                assert model.completion_request("Hello").send().text == "Hello there"

        def raw() -> None:
            for _ in range(calls):
                session.post(base_url + "/chat/completions", json=payload,
                             headers={"Authorization": "Bearer sk-bench"}).json()

        samples: dict[str, list[float]] = {"standard": [], "lean": [], "requests": []}
        for i in range(rounds + 2):
            for name, run_calls, response_class in (("standard", ours, http.client.HTTPResponse),
                                                    ("lean", ours, _headers.LeanResponse),
                                                    ("requests", raw, None)):
                if response_class is not None:
                    connection_class.response_class = response_class
                started = time.process_time()
                run_calls()
                if i >= 2:  # two warm-up rounds
                    samples[name].append((time.process_time() - started) / calls)
        connection_class.response_class = _headers.LeanResponse
    standard, lean, raw_t = (statistics.median(samples[k]) for k in ("standard", "lean", "requests"))
    saving = 1 - lean / standard
    return [
        Row("chat call CPU with ~25 real response headers: lean vs standard header read", lean * 1e6,
            standard * 1e6, "us", "saving >= 15% to take it", lean / standard, saving >= 0.15),
        Row("the same, rig_sync (lean) vs raw requests", lean * 1e6, raw_t * 1e6, "us", "(info)", lean / raw_t, True),
    ]


if __name__ == "__main__":
    print(HEADER)
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 12):
        print(row.line())
