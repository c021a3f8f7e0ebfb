"""Batch throughput against a fake provider in another process:

* 400 chat requests at 200 ms server latency through `batch.map` with 32 workers, against the
  ceiling of 32 / 0.2 s = 160 req/s; no pool warnings; connections opened = 32 (also in bursts of
  32 items). Compared with raw `requests` + `ThreadPoolExecutor` on requests' default pool (10).
* 10,000 embeddings (1536 dims) through `batch.embed_texts` against sequential float JSON.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3
from _common import HEADER, Row, child_server, embedding_inputs, fake_server, raw_float_embeddings, timed_rounds

from rig_sync import batch
from rig_sync.providers import openai

HEADERS = {"Authorization": "Bearer fake-key"}
BARE_HEADERS = {**HEADERS, "Content-Type": "application/json"}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}

class Server:
    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url

    def connections(self) -> int:
        """Connections accepted since the last call."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())


@contextmanager
def server(latency: float) -> Iterator[Server]:
    # The lean latency server, not FakeProvider: its per-request CPU would otherwise decide the
    # result (see _latency_server.py). Both clients of the comparison talk to the same one.
    with child_server([str(Path(__file__).with_name("_latency_server.py")), str(latency)]) as (proc, base_url):
        yield Server(proc, base_url)


class PoolWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "pool" in record.getMessage().lower():
            self.count += 1


@contextmanager
def pool_warnings() -> Iterator[PoolWarnings]:
    handler = PoolWarnings()
    logger = logging.getLogger("urllib3")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _socket_floor(host: str, port: int, requests_total: int, workers: int) -> Callable[[], None]:
    """The least any Python client can do per request: one keep-alive socket per thread, one write,
    one read, no parsing. What it reaches is the practical ceiling on this machine and server."""
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Length: 2\r\n\r\n{}")
    sockets: list[socket.socket] = []  # opened on the first run, so the server counts them there
    free: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()

    def one(_: object) -> None:
        sock = free.get()
        sock.sendall(request)
        answer = sock.recv(65536)  # the whole small answer comes in one segment on loopback
        assert answer.startswith(b"HTTP/1.1 200")
        free.put(sock)

    def run() -> None:
        while len(sockets) < workers:
            sock = socket.create_connection((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets.append(sock)
        for sock in sockets:
            free.put(sock)
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(requests_total)))
        while not free.empty():
            free.get()

    return run


def concurrency(requests_total: int = 400, workers: int = 32, latency: float = 0.2, rounds: int = 5) -> list[Row]:
    """Median of `rounds` interleaved runs of each candidate (this machine's run-to-run spread is
    about ±0.01 of the ceiling, as large as the differences measured)."""
    ceiling = workers / latency  # 400 / 32 rounds up to 13 waves: at most 0.96x is reachable
    rows = []
    with server(latency) as srv:
        # One client per candidate, so each one's connections are counted from zero.
        model = openai.Client("fake-key", base_url=srv.base_url).completion_model("gpt-4o-mini")
        burst_model = openai.Client("fake-key", base_url=srv.base_url).completion_model("gpt-4o-mini")
        prompts = ["Hello there"] * requests_total

        def ours() -> None:
            assert all(batch.map(lambda p: model.completion_request(p).send().text, prompts, max_workers=workers))

        def bursts() -> None:
            for start in range(0, requests_total, workers):
                batch.map(lambda p: burst_model.completion_request(p).send().text, prompts[start:start + workers],
                          max_workers=workers)

        session = requests.Session()  # requests' default pool: 10 connections per host

        def raw() -> None:
            def one(_: object) -> None:
                session.post(srv.base_url + "/chat/completions", json=BODY, headers=HEADERS).json()

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, range(requests_total)))

        where = urlsplit(srv.base_url)
        host, port = where.hostname or "127.0.0.1", where.port or 80
        bare_pool = urllib3.HTTPConnectionPool(host, port, maxsize=workers, block=True)
        body = json.dumps(BODY).encode()

        def bare() -> None:  # urllib3 alone, no library code on top: what a urllib3-based client can reach
            def one(_: object) -> None:
                answer = bare_pool.urlopen("POST", "/v1/chat/completions", body=body, headers=BARE_HEADERS,
                                           retries=False, assert_same_host=False)
                json.loads(answer.data)

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, range(requests_total)))

        candidates = {"batch.map": ours, "batch.map in bursts of 32": bursts, "raw": raw, "bare": bare,
                      "floor": _socket_floor(host, port, requests_total, workers)}
        opened = dict.fromkeys(candidates, 0)
        warned = dict.fromkeys(candidates, 0)
        rates: dict[str, list[float]] = {name: [] for name in candidates}
        for round_ in range(rounds + 1):  # round 0 warms up: connections are opened there, reused after
            for name, fn in candidates.items():
                srv.connections()
                with pool_warnings() as warnings:
                    started = time.perf_counter()
                    fn()
                    elapsed = time.perf_counter() - started
                opened[name] += srv.connections()
                warned[name] += warnings.count
                if round_:
                    rates[name].append(requests_total / elapsed)
        share = {name: statistics.median(values) / ceiling for name, values in rates.items()}
        spread = {name: f"{min(values) / ceiling:.3f}-{max(values) / ceiling:.3f}" for name, values in rates.items()}
    for name in ("batch.map", "batch.map in bursts of 32"):
        rate = share[name] * ceiling
        label = (f"{name}: {requests_total} x {latency * 1000:.0f} ms, {workers} workers, median of {rounds} "
                 f"(runs {spread[name]}; {opened[name]} conns in {rounds + 1} runs, {warned[name]} pool warnings)")
        rows.append(Row(label,
                        rate, ceiling, "req/s", ">= 0.95x ceiling, 0 warnings, 32 conns", share[name],
                        share[name] >= 0.95 and warned[name] == 0 and opened[name] <= workers))
    print(f"raw requests + ThreadPoolExecutor({workers}), default pool: {share['raw']:.3f} of the ceiling "
          f"(runs {spread['raw']}), {opened['raw']} connections, {warned['raw']} pool warnings; "
          f"bare urllib3 pool: {share['bare']:.3f} (runs {spread['bare']}); "
          f"raw sockets (the floor of any Python client here): {share['floor']:.3f} (runs {spread['floor']}); "
          f"batch.map reaches {share['batch.map'] / share['floor']:.3f} of the floor", file=sys.stderr)
    return rows


def embeddings(texts: int = 10_000, rounds: int = 3) -> Row:
    # FakeProvider (it speaks /embeddings; the lean server answers chat only), in its own process.
    with fake_server() as base_url:
        session = requests.Session()
        model = openai.Client("fake-key", base_url=base_url).embedding_model("text-embedding-3-small")
        inputs = embedding_inputs(texts)

        def raw() -> None:
            assert len(raw_float_embeddings(session, base_url, inputs, HEADERS)) == texts

        def ours() -> None:
            assert len(batch.embed_texts(model, inputs)) == texts

        t = timed_rounds({"raw": raw, "ours": ours}, rounds)
    speedup = t["raw"] / t["ours"]
    return Row(f"batch.embed_texts, {texts} x 1536, throughput", texts / t["ours"], texts / t["raw"], "texts/s",
               ">= 2x", speedup, speedup >= 2.0)


def run() -> list[Row]:
    return [*concurrency(), embeddings()]


if __name__ == "__main__":
    print(HEADER)
    for row in run():
        print(row.line())
