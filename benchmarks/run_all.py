"""Run every benchmark and print one table of ratios (rig_sync vs raw requests, same run)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HEADER, Row

SUITES = ["bench_import", "bench_requests", "bench_headers", "bench_stream_memory", "bench_ratelimit", "bench_batch"]


def main() -> int:
    rows: list[Row] = []
    for name in SUITES:
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows.extend(importlib.import_module(name).run())
    print(HEADER)
    for row in rows:
        print(row.line())
    for extra in ("bench_vector_store", "bench_vector_stores"):
        if (Path(__file__).parent / f"{extra}.py").exists():
            print(f"\n{extra}:")
            importlib.import_module(extra).main()
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
