"""The benchmark scripts run (at toy sizes) and report every row. No timing is asserted here:
the figures mean something only at full size, from `make bench`; this only keeps the code working."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def bench_path() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


def test_batch_concurrency_and_embeddings_report_their_rows() -> None:
    import bench_batch

    rows = bench_batch.concurrency(requests_total=8, workers=4, latency=0.02, rounds=1)
    assert [r.name.split(":")[0] for r in rows] == ["batch.map", "batch.map in bursts of 32"]
    for row in rows:
        assert row.ours > 0 and " 4 conns in 2 runs, 0 pool warnings" in row.name, row.name
    row = bench_batch.embeddings(texts=40, rounds=1)
    assert row.ours > 0 and row.baseline > 0


def test_requests_benchmarks_report_their_rows() -> None:
    import bench_requests
    from _common import fake_server

    with fake_server() as base_url:
        rows = [bench_requests.chat(base_url, calls=5, rounds=1),
                bench_requests.streaming(base_url, words=20, rounds=1),
                bench_requests.embeddings(base_url, texts=20, rounds=1)]
    assert all(r.ours > 0 and r.baseline > 0 for r in rows)


def test_header_benchmark_reports_both_reads_and_leaves_the_lean_one_on() -> None:
    import bench_headers

    from rig_sync.http import _headers, _pool

    rows = bench_headers.run(rounds=1, calls=3)
    assert len(rows) == 2 and all(r.ours > 0 and r.baseline > 0 for r in rows)
    assert _pool.SCOPED_POOLS["http"].ConnectionCls.response_class is _headers.LeanResponse


def test_stream_memory_benchmark_reports_the_text_it_received() -> None:
    import bench_stream_memory

    rows = bench_stream_memory.run(words=2_000)
    assert len(rows) == 2 and all(r.baseline > 0 for r in rows)  # MiB of text received, by each side


def test_soak_and_vector_store_run_small(capsys: pytest.CaptureFixture[str]) -> None:
    import bench_soak
    import bench_vector_store

    rows = bench_soak.run(requests=200, threads=4, fault_rate=0.05)
    assert rows[-1].ok, rows[-1].name  # every request ended in an answer or a RigError
    bench_vector_store.main(["--docs", "200", "--dims", "8", "--numpy-queries", "2", "--pure-queries", "1"])
    assert "built store: 200 x 8" in capsys.readouterr().out


def test_vector_stores_benchmark_runs_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """Every store (PostgreSQL started for the run), exact and indexed, at 2,000 x 32."""
    import bench_vector_stores

    results = bench_vector_stores.main(["--quick"])
    rows = {(r.store, r.mode.split(",")[0].split(" ")[0]) for r in results}
    assert rows == {("numpy scan", "exact"), ("memory", "exact"), ("sqlite", "exact"), ("pgvector", "exact"),
                    ("pgvector", "HNSW"), ("lancedb", "exact"), ("lancedb", "IVF_SQ")}
    assert all(r.p50_ms > 0 and r.queries > 0 for r in results)
    assert all(r.recall == 1.0 for r in results if r.mode == "exact")  # exact search finds the true top 10
    out = capsys.readouterr().out
    assert "| lancedb | IVF_SQ" in out and "sqlite: insert of 2,000 vectors" in out
