"""`rig-sync batch …`: a file of prompts (or texts to embed) through one model.

    rig-sync batch prompts.jsonl --model openai:gpt-4o --out results.jsonl --workers 16
    rig-sync batch embed texts.txt --model openai:text-embedding-3-small --out vectors.jsonl

Input: one item per line, as JSON (a string, or an object with "prompt"/"text" and an optional
"id") or as plain text; blank lines are skipped. Output: one JSON line per input item, in input
order, `{"index", "id", "ok": true, "result": …}` or `{…, "ok": false, "error": {"type", "message"}}`.
While the job runs the output file is its journal (lines in finishing order); run the same
command again and only the failed or missing items are sent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import InvalidRequestError

__all__ = ["add_parser", "run"]

USAGE = """%(prog)s FILE --model PROVIDER:MODEL --out RESULTS [options]
       %(prog)s embed FILE --model PROVIDER:MODEL --out VECTORS [options]"""


class InputError(InvalidRequestError):
    """The input file, or a line of it, cannot be read as items."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `batch` command on an `argparse` sub-parser set (`set_defaults(run=…)`)."""
    from .cli import add_model_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "batch", help="run a file of prompts (or `embed` texts), resumably",
        usage=USAGE, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # One list, so that both `batch FILE` and `batch embed FILE` parse; USAGE spells the two out.
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="the input file; `embed FILE` embeds its lines")
    add_model_arguments(parser, "openai:gpt-4o-mini")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="results file (JSON lines); resumed from when run again")
    parser.add_argument("--workers", type=_positive, default=16, metavar="N", help="requests in parallel (default 16)")
    parser.add_argument("--rpm", type=float, default=None, metavar="N", help="at most this many requests per minute")
    parser.add_argument("--preamble", default=None, metavar="TEXT", help="system prompt for every completion")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    parser.set_defaults(run=_main)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run(argv: Sequence[str]) -> int:
    """The `batch` command on its own: `run(["prompts.jsonl", "--model", "openai:gpt-4o", …])`."""
    from .cli import main

    return main(["batch", *argv])


def read_items(path: str) -> list[tuple[Any, str]]:
    """`(id, text)` for every non-blank line of the input file."""
    items: list[tuple[Any, str]] = []
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                value = None  # a plain line
            if isinstance(value, dict):
                text = value.get("prompt", value.get("text"))
                if not isinstance(text, str) or not text:
                    raise InputError(f"{path}:{number}: a JSON object needs a non-empty \"prompt\" or \"text\" string")
                items.append((value.get("id"), text))
            elif isinstance(value, str) and value:
                items.append((None, value))
            else:
                items.append((None, line.rstrip("\r\n")))
    return items


def _main(args: argparse.Namespace) -> int:
    mode, path = _mode(args.inputs)
    return _job(args, mode, read_items(path))


def _mode(inputs: list[str]) -> tuple[str, str]:
    if len(inputs) == 1:
        return "complete", inputs[0]
    if len(inputs) == 2 and inputs[0] in ("embed", "complete"):
        return inputs[0], inputs[1]
    raise InputError(f"batch takes FILE or `embed FILE`, not {' '.join(inputs)!r}")


def _job(args: argparse.Namespace, mode: str, items: list[tuple[Any, str]]) -> int:
    from . import batch
    from .journal import Journal

    texts = [text for _, text in items]
    do, size = _work(args, mode)
    journal = Journal(args.out)
    failed: dict[int, BaseException] = {}
    try:
        todo = [i for i in range(len(items)) if not journal.is_finished(i)]
        units = [todo[start:start + size] for start in range(0, len(todo), size)]
        limiter = None
        if args.rpm:
            from .ratelimit import RateLimiter

            limiter = RateLimiter(rpm=args.rpm)
        stream = batch.imap(lambda unit: do([texts[i] for i in unit]), units, max_workers=args.workers,
                            rate_limit=limiter, journal=_UnitJournal(journal, units), progress=args.progress)
        try:
            for u, outcome in stream:
                if isinstance(outcome, BaseException):
                    failed.update(dict.fromkeys(units[u], outcome))
        except KeyboardInterrupt:
            stream.close()
            print(f"\nrig-sync batch: interrupted; {len(journal.finished())} of {len(items)} done in {args.out}; "
                  "run the same command again to finish", file=sys.stderr)
            return 130
    finally:
        journal.close()
    _write_in_order(args.out, items, journal.finished(), journal.failed())
    print(f"rig-sync batch: {len(items) - len(failed)} of {len(items)} done, {len(failed)} failed -> {args.out}",
          file=sys.stderr)
    return 1 if failed else 0


def _work(args: argparse.Namespace, mode: str) -> tuple[Callable[[list[str]], list[Any]], int]:
    """The function that runs one unit of texts, and how many texts a unit holds."""
    from .cli import model_for

    if mode == "embed":
        model = model_for("embeddings", args)
        return (lambda chunk: [e.vec for e in model.embed_texts(chunk)]), max(1, model.max_documents)
    completion = model_for("completion", args)
    preamble = args.preamble

    def answer(unit: list[str]) -> list[Any]:
        request = completion.completion_request(unit[0])
        return [(request.preamble(preamble) if preamble else request).send().text]

    return answer, 1


class _UnitJournal:
    """Journals a unit of several items (a chunk of texts) as one line per item."""

    def __init__(self, journal: Any, units: list[list[int]]) -> None:
        self._journal = journal
        self._units = units

    def finished(self) -> dict[int, Any]:
        return {}  # units are built from unfinished items only

    def is_finished(self, index: int) -> bool:
        return False

    def record(self, index: int, outcome: Any, ok: bool) -> None:
        for k, item in enumerate(self._units[index]):
            self._journal.record(item, outcome[k] if ok else outcome, ok)

    def close(self) -> None:
        pass  # the command closes the real journal


def _write_in_order(out: str, items: list[tuple[Any, str]], done: dict[int, Any], failed: dict[int, Any]) -> None:
    """Rewrite the journal as the result file: one line per input item, in input order."""
    tmp = f"{out}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for i, (item_id, _) in enumerate(items):
            entry: dict[str, Any] = {"index": i, "id": item_id}
            if i in done:
                entry.update(ok=True, result=done[i])
            else:
                entry.update(ok=False, error=failed.get(i) or {"type": "NotRun", "message": "not run"})
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
