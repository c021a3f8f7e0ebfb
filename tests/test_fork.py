"""Fork safety (gunicorn's pre-fork model): a client built before `os.fork()` never shares a live
socket with a child process; the child opens connections of its own, transparently.

Every process sends its own unique token and must get its own echo back (the fake echoes the
prompt), so a shared socket would show up as cross-talk, or as a connection count that did not grow.
"""

from __future__ import annotations

import json
import os
import selectors
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import requests

from rig_sync.providers import openai
from rig_sync.testing import FakeProvider
from rig_sync.testing._openai import embed_text

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

MODEL = "gpt-4o-mini"
NDIMS = 8
BOUND = 20.0  # seconds a child may take; it needs milliseconds


def default_client(fake: FakeProvider) -> openai.Client:
    client: openai.Client = openai.Client.builder(fake.api_key).base_url(fake.base_url).timeout(5).build()
    return client


def session_client(fake: FakeProvider) -> openai.Client:
    client: openai.Client = (
        openai.Client.builder(fake.api_key).base_url(fake.base_url).custom_client(requests.Session()).timeout(5).build()
    )
    return client


CLIENTS = pytest.mark.parametrize("make_client", [default_client, session_client], ids=["default", "custom_session"])


def exchange(client: openai.Client, token: str) -> dict[str, Any]:
    """A completion, a stream and an embedding carrying `token`; what came back, and whether it matches."""
    model = client.completion_model(MODEL)
    text = model.completion_request(f"completion {token}").send().text
    streamed = "".join(model.completion_request(f"stream {token}").stream().text_stream())
    vec = client.embedding_model("text-embedding-3-small", NDIMS).embed_text(f"embed {token}").vec
    return {
        "completion": text,
        "stream": streamed,
        "embedding_ok": vec == embed_text(f"embed {token}", NDIMS),
    }


def expected(token: str) -> dict[str, Any]:
    return {"completion": f"echo: completion {token}", "stream": f"echo: stream {token}", "embedding_ok": True}


def fork_child(work: Callable[[], dict[str, Any]]) -> tuple[int, int]:
    """Run `work` in a forked child that reports its result (or error) as JSON on a pipe and
    exits at once with os._exit (no pytest teardown in the child). Returns (pid, read end)."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            try:
                report: dict[str, Any] = {"result": work()}
                code = 0
            except BaseException as exc:
                report = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(write_fd, json.dumps(report).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def child_report(pid: int, read_fd: int) -> dict[str, Any]:
    """The child's report and exit code; bounded: a child that never answers is killed."""
    data = b""
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(read_fd, selectors.EVENT_READ)
            while True:
                if not sel.select(BOUND):
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pytest.fail(f"the child said nothing within {BOUND} s")
                piece = os.read(read_fd, 65536)
                if not piece:
                    break
                data += piece
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    report: dict[str, Any] = json.loads(data) if data else {}
    report["exit_code"] = os.waitstatus_to_exitcode(status)
    return report


@CLIENTS
def test_parent_and_child_each_get_their_own_answers(
    fake: FakeProvider, make_client: Callable[[FakeProvider], openai.Client]
) -> None:
    client = make_client(fake)
    assert exchange(client, "warm-up") == expected("warm-up")
    assert fake.connection_count == 1  # the parent has a pooled, idle, live connection

    child_token = f"child-{uuid.uuid4().hex}"
    pid, read_fd = fork_child(lambda: exchange(client, child_token))
    parent_token = f"parent-{uuid.uuid4().hex}"
    mine = exchange(client, parent_token)  # while the child works, on what would be the same socket
    theirs = child_report(pid, read_fd)

    assert theirs == {"result": expected(child_token), "exit_code": 0}
    assert mine == expected(parent_token)
    # The child opened exactly one connection of its own; the parent kept reusing its pooled one.
    assert fake.connection_count == 2
    # The child's exit closed nothing of the parent's.
    assert exchange(client, "after") == expected("after")
    assert fake.connection_count == 2


def test_many_workers_forked_from_one_client(fake: FakeProvider) -> None:
    # gunicorn --preload: one client built in the master, several workers forked from it.
    client = default_client(fake)
    assert exchange(client, "master")["completion"] == "echo: completion master"
    tokens = [f"worker{n}-{uuid.uuid4().hex}" for n in range(3)]
    children = [fork_child(lambda token=token: exchange(client, token)) for token in tokens]  # type: ignore[misc]
    reports = [child_report(pid, fd) for pid, fd in children]
    assert reports == [{"result": expected(token), "exit_code": 0} for token in tokens]
    assert fake.connection_count == 1 + len(tokens)


def test_a_failing_child_is_reported_not_hidden(fake: FakeProvider) -> None:
    # The harness itself: an error in the child reaches the test as a report and an exit code.
    def boom() -> dict[str, Any]:
        raise RuntimeError("child failed on purpose")

    assert child_report(*fork_child(boom)) == {"error": "RuntimeError: child failed on purpose", "exit_code": 1}


def test_a_child_forked_after_a_batch_runs_batches_of_its_own(fake: FakeProvider) -> None:
    # The parent's warm batch threads do not exist in the child: it must start its own.
    from rig_sync import batch

    model = default_client(fake).completion_model("gpt-4o-mini")
    ask = lambda p: model.completion_request(p).send().text  # noqa: E731
    assert batch.map(ask, ["a", "b", "c"], max_workers=2) == ["echo: a", "echo: b", "echo: c"]
    pid, read_fd = fork_child(lambda: {"answers": batch.map(ask, ["x", "y", "z"], max_workers=2)})
    assert child_report(pid, read_fd) == {"result": {"answers": ["echo: x", "echo: y", "echo: z"]}, "exit_code": 0}
