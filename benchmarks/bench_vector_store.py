"""Top-5 cosine search over an InMemoryVectorStore: numpy scoring against the pure-Python path.

    python benchmarks/bench_vector_store.py                 # 100,000 x 384 random vectors (seeded)
    python benchmarks/bench_vector_store.py --docs 20000    # smaller, quicker

Without numpy installed only the pure-Python row is printed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from array import array
from collections.abc import Callable, Sequence

from rig_sync import vector_store
from rig_sync.vector_store import InMemoryVectorStore


def build_store(docs: int, dims: int, seed: int) -> InMemoryVectorStore[int]:
    rnd = random.Random(seed).random
    store: InMemoryVectorStore[int] = InMemoryVectorStore()
    batch = 10_000
    for start in range(0, docs, batch):
        ids = range(start, min(docs, start + batch))
        store.insert_documents((f"doc{i}", i, array("d", [rnd() - 0.5 for _ in range(dims)])) for i in ids)
    return store


def per_query_ms(search: Callable[[list[float]], object], queries: list[list[float]]) -> float:
    start = time.perf_counter()
    for query in queries:
        search(query)
    return (time.perf_counter() - start) * 1000 / len(queries)


def main(argv: Sequence[str] | None = None) -> None:
    """Run with `argv` (defaults when None, so benchmarks/run_all.py can call main())."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--numpy-queries", type=int, default=50)
    parser.add_argument("--pure-queries", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(list(argv or []))

    t0 = time.perf_counter()
    store = build_store(args.docs, args.dims, args.seed)
    print(f"built store: {len(store):,} x {args.dims} vectors in {time.perf_counter() - t0:.1f} s")
    rnd = random.Random(args.seed + 1)
    queries = [[rnd.gauss(0, 1) for _ in range(args.dims)] for _ in range(max(args.numpy_queries, args.pure_queries))]

    def search(query: list[float]) -> list[str]:
        return [doc_id for _, doc_id, _ in store.search_vector(query, args.top)]

    rows: list[tuple[str, float, int]] = []
    has_numpy = vector_store._np is not None
    try:
        if has_numpy:
            vector_store.USE_NUMPY = True
            t0 = time.perf_counter()
            fast_first = search(queries[0])  # the first query also builds the matrix
            print(f"numpy matrix built on first query in {time.perf_counter() - t0:.2f} s")
            rows.append(("numpy", per_query_ms(search, queries[: args.numpy_queries]), args.numpy_queries))
        vector_store.USE_NUMPY = False
        pure_first = search(queries[0])
        rows.append(("pure Python", per_query_ms(search, queries[: args.pure_queries]), args.pure_queries))
    finally:
        vector_store.USE_NUMPY = has_numpy

    if has_numpy and fast_first != pure_first:
        raise SystemExit(f"paths disagree on the top {args.top}: {fast_first} vs {pure_first}")

    print(f"\ntop-{args.top} query, {args.docs:,} x {args.dims}")
    print(f"{'path':<12} {'ms/query':>10} {'queries':>8}")
    for name, ms, count in rows:
        print(f"{name:<12} {ms:>10.2f} {count:>8}")
    if has_numpy:
        print(f"\nnumpy is {rows[1][1] / rows[0][1]:.0f}x faster than pure Python (same top-{args.top})")
    else:
        print("\nnumpy is not installed: pure-Python path only (pip install 'rig-sync[numpy]')")


if __name__ == "__main__":
    main(sys.argv[1:])
