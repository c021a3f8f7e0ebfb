"""batch.map on a Dask cluster of worker processes: models pickle without their connections."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from rig_sync import batch
from rig_sync.providers import openai
from rig_sync.testing import FakeProvider

distributed = pytest.importorskip("distributed")


class Ask:
    """A picklable callable holding the model; it is rebuilt (with a fresh pool) on each worker."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, prompt: str) -> tuple[str, int]:
        return self.model.completion_request(prompt).send().text, os.getpid()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                                  silence_logs=40) as local, distributed.Client(local, timeout=60) as client:
        yield client


def test_map_runs_across_worker_processes(cluster: Any) -> None:
    with FakeProvider() as fake:
        model = openai.Client(fake.api_key, base_url=fake.base_url, timeout=20).completion_model("gpt-4o-mini")
        prompts = [f"q{i}" for i in range(40)]
        out = batch.map(Ask(model), prompts, executor=cluster.get_executor(), max_workers=4)
        assert [text for text, _ in out] == [f"echo: {p}" for p in prompts]  # in input order
        pids = {pid for _, pid in out}
        assert os.getpid() not in pids and 1 <= len(pids) <= 2  # answered in the worker processes
        assert fake.request_count == 40


def test_failures_cross_the_cluster_with_their_type(cluster: Any, tmp_path: Any) -> None:
    with FakeProvider() as fake:
        model = openai.Client(fake.api_key, base_url=fake.base_url, max_retries=0, timeout=20) \
            .completion_model("gpt-4o-mini")
        from rig_sync.testing import Fault

        fake.inject(Fault.status(401), times=1)
        journal = tmp_path / "j.jsonl"
        with pytest.raises(batch.BatchError) as info:
            batch.map(Ask(model), ["a", "b", "c"], executor=cluster.get_executor(), max_workers=1, journal=journal)
        from rig_sync.errors import AuthenticationError

        (error,) = info.value.failures.values()
        assert isinstance(error, AuthenticationError)
        assert sum(r is not None for r in info.value.results) == 2
        again = batch.map(Ask(model), ["a", "b", "c"], executor=cluster.get_executor(), journal=journal)
        assert [text for text, _ in again] == ["echo: a", "echo: b", "echo: c"]
        assert fake.request_count == 4  # only the failed item ran again
