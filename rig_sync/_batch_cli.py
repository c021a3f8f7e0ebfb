"""`rig-sync batch …`: a file of prompts (or texts to embed) through one model.

    rig-sync batch prompts.jsonl --model openai:gpt-4o --out results.jsonl --workers 16
    rig-sync batch embed texts.txt --model openai:text-embedding-3-small --out vectors.jsonl

Input: one item per line, as JSON (a string, or an object with "prompt"/"text" and an optional
"id", a string or integer unique in the file) or as plain text; blank lines are skipped.
Output: one JSON line per input item, in input order, `{"index", "id", "ok": true, "result": …}`
or `{…, "ok": false, "error": {"type", "message"}}` (plus the fingerprints "job" and "item").
While the job runs the output file is its journal (lines in finishing order); run the same
command again and only the failed or missing items are sent. An answer is reused only for the
same line (its id and text) of the same job (provider, model, mode and preamble), wherever the
line has moved; a results file of another job is refused unless --redo is given. Ctrl-C stops
starting requests and waits for those already sent, so that every answer paid for is kept.

--provider-batch sends the lines as the provider's own batch job instead (OpenAI, Anthropic,
Gemini; embeddings on OpenAI): about half the price, answered within 24 hours. The command waits
with a progress bar and writes the same results file; the jobs are journaled in RESULTS.jobs, so
running the same command again (after Ctrl-C, a crash or a kill) reattaches to them instead of
paying again. Ctrl-C while waiting asks whether to cancel the jobs or leave them running.

    rig-sync batch prompts.jsonl --model openai:gpt-4o-mini --provider-batch --out results.jsonl
    rig-sync batch status JOB --model openai:gpt-4o-mini      # a job's state and counts
    rig-sync batch fetch JOB --model openai:gpt-4o-mini --out answers.jsonl

`fetch` waits for a job and writes its answers keyed by the job's custom ids (`embed fetch JOB`
for an embeddings job); run the submitting command again instead to get them keyed by your ids.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import _json
from .errors import InvalidRequestError, RigError

__all__ = ["add_parser", "run"]

USAGE = """%(prog)s FILE --model PROVIDER:MODEL --out RESULTS [options]
       %(prog)s embed FILE --model PROVIDER:MODEL --out VECTORS [options]
       %(prog)s status JOB [JOB ...] --model PROVIDER:MODEL
       %(prog)s [embed] fetch JOB --model PROVIDER:MODEL --out RESULTS"""


class InputError(InvalidRequestError):
    """The input file, or a line of it, cannot be read as items."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `batch` command on an `argparse` sub-parser set (`set_defaults(run=…)`)."""
    from .cli import add_model_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "batch", help="run a file of prompts (or `embed` texts), resumably",
        usage=USAGE, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # One list, so that both `batch FILE` and `batch embed FILE` parse; USAGE spells the two out.
    parser.add_argument("inputs", nargs="+", metavar="FILE",
                        help="the input file; `embed FILE` embeds its lines; `status JOB`, `fetch JOB`")
    add_model_arguments(parser, "openai:gpt-4o-mini")
    parser.add_argument("--out", metavar="FILE",  # required except for `status` (checked in _main)
                        help="results file (JSON lines); resumed from when run again")
    parser.add_argument("--provider-batch", action="store_true",
                        help="send the lines as the provider's batch job: about half the price, answered "
                             "within 24 h (jobs journaled in RESULTS.jobs)")
    parser.add_argument("--poll", type=_seconds, default=30.0, metavar="S",
                        help="with --provider-batch or fetch: at most S seconds between status checks (default 30)")
    parser.add_argument("--workers", type=_positive, default=16, metavar="N", help="requests in parallel (default 16)")
    parser.add_argument("--rpm", type=float, default=None, metavar="N", help="at most this many requests per minute")
    parser.add_argument("--preamble", default=None, metavar="TEXT", help="system prompt for every completion")
    parser.add_argument("--redo", action="store_true",
                        help="when RESULTS holds another model's or options' answers, ask again instead of refusing")
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


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def run(argv: Sequence[str]) -> int:
    """The `batch` command on its own: `run(["prompts.jsonl", "--model", "openai:gpt-4o", …])`."""
    from .cli import main

    return main(["batch", *argv])


def read_items(path: str) -> list[tuple[Any, str]]:
    """`(id, text)` for every non-blank line of the input file; ids are unique strings or integers."""
    items: list[tuple[Any, str]] = []
    ids: dict[tuple[Any, type], int] = {}
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = _json.loads(line)
            except ValueError:  # _json's decode error is one, also for a line nested too deep
                value = None  # a plain line
            if isinstance(value, dict):
                text = value.get("prompt", value.get("text"))
                if not isinstance(text, str) or not text:
                    raise InputError(f"{path}:{number}: a JSON object needs a non-empty \"prompt\" or \"text\" string")
                item_id = value.get("id")
                if item_id is not None and (isinstance(item_id, bool) or not isinstance(item_id, str | int)):
                    raise InputError(f"{path}:{number}: \"id\" must be a string or an integer, not {item_id!r:.40}")
                typed = (item_id, type(item_id))  # "1" and 1 are two ids, as in the results
                if item_id is not None and typed in ids:
                    raise InputError(f"{path}:{number}: id {item_id!r:.40} is also on line {ids[typed]}; "
                                     "ids must be unique (results are keyed by them)")
                ids[typed] = number
                items.append((item_id, text))
            elif isinstance(value, str) and value:
                items.append((None, value))
            else:
                items.append((None, line.rstrip("\r\n")))
    return items


def _main(args: argparse.Namespace) -> int:
    if args.inputs[0] == "status" and len(args.inputs) > 1:
        from ._batch_jobs_cli import status

        return status(args, args.inputs[1:])
    if args.out is None:
        raise InputError("batch needs --out RESULTS, the file the results go to")
    if args.inputs[-2:-1] == ["fetch"] and args.inputs[:-2] in ([], ["embed"]):
        from ._batch_jobs_cli import fetch

        return fetch(args, "embed" if args.inputs[0] == "embed" else "complete", args.inputs[-1])
    mode, path = _mode(args.inputs)
    items = read_items(path)
    if args.provider_batch:
        from ._batch_jobs_cli import provider_job

        return provider_job(args, mode, items)
    return _job(args, mode, items)


def _mode(inputs: list[str]) -> tuple[str, str]:
    if len(inputs) == 1:
        return "complete", inputs[0]
    if len(inputs) == 2 and inputs[0] in ("embed", "complete"):
        return inputs[0], inputs[1]
    raise InputError(f"batch takes FILE, `embed FILE`, `status JOB` or `fetch JOB`, not {' '.join(inputs)!r}")


def open_results(args: argparse.Namespace, job: str, items: list[tuple[Any, str]]) -> tuple[Any, list[str],
                                                                                        dict[int, tuple[Any, bool]]]:
    """The results file as the job's journal: the journal, each line's fingerprint, and the
    outcomes it already holds for these lines (by index)."""
    from .journal import Journal, fingerprint

    journal = Journal(args.out)
    try:
        try:
            journal.begin(job, on_mismatch="redo" if args.redo else "refuse")
        except RigError as exc:
            raise type(exc)(f"{exc}".replace("pass on_mismatch='redo'", "pass --redo")) from None
        prints = [fingerprint([item_id, text]) for item_id, text in items]  # a line is its id and its text
        outcomes: dict[int, tuple[Any, bool]] = {}
        for i, print_ in enumerate(prints):
            found, result = journal.take(print_)
            if found:
                outcomes[i] = result, True
    except BaseException:
        journal.close()
        raise
    return journal, prints, outcomes


def _job(args: argparse.Namespace, mode: str, items: list[tuple[Any, str]]) -> int:
    from . import batch

    texts = [text for _, text in items]
    do, size, job = _work(args, mode)
    journal, prints, outcomes = open_results(args, job, items)
    try:
        todo = [i for i in range(len(items)) if i not in outcomes]
        units = [todo[start:start + size] for start in range(0, len(todo), size)]
        limiter = None
        if args.rpm:
            from .ratelimit import RateLimiter

            limiter = RateLimiter(rpm=args.rpm)
        stream = batch.imap(lambda unit: do([texts[i] for i in unit]), units, max_workers=args.workers,
                            rate_limit=limiter, journal=_UnitJournal(journal, units, items, prints, outcomes),
                            progress=args.progress)
        try:
            for _ in stream:
                pass
        except KeyboardInterrupt:
            stream.close()
            if journal.held:  # sent and paid for: wait for the answers (each is bounded by the client's timeout)
                print(f"\nrig-sync batch: interrupted; waiting for the {journal.held} requests already sent "
                      "(Ctrl-C again to abandon them)", file=sys.stderr)
                journal.wait()
            done = sum(ok for _, ok in outcomes.values())
            print(f"\nrig-sync batch: interrupted; {done} of {len(items)} done in {args.out}; "
                  "run the same command again to finish", file=sys.stderr)
            return 130
    finally:
        journal.close()
    return finish(args, job, items, prints, outcomes)


def finish(args: argparse.Namespace, job: str, items: list[tuple[Any, str]], prints: list[str],
           outcomes: dict[int, tuple[Any, bool]]) -> int:
    """Write the results file in input order and say how it went; the exit code."""
    _write_in_order(args.out, job, items, prints, outcomes)
    failed = sum(not ok for _, ok in outcomes.values())
    print(f"rig-sync batch: {len(items) - failed} of {len(items)} done, {failed} failed -> {args.out}",
          file=sys.stderr)
    return 1 if failed else 0


def model_and_job(args: argparse.Namespace, mode: str) -> tuple[Any, str]:
    """The model `args` name for `mode`, and the job: what, besides the line itself, decides an
    answer (never the key or base URL: one model, one answer; the same with --provider-batch)."""
    from .cli import model_for

    if mode == "embed":
        model = model_for("embeddings", args)
        return model, json.dumps({"batch": mode, "provider": model.provider, "model": model.model}, sort_keys=True)
    model = model_for("completion", args)
    return model, json.dumps({"batch": mode, "provider": model.provider, "model": model.model,
                              "preamble": args.preamble}, sort_keys=True)


def _work(args: argparse.Namespace, mode: str) -> tuple[Callable[[list[str]], list[Any]], int, str]:
    """The function that runs one unit of texts, how many texts a unit holds, and the job."""
    model, job = model_and_job(args, mode)
    if mode == "embed":
        return (lambda chunk: [e.vec for e in model.embed_texts(chunk)]), max(1, model.max_documents), job
    completion = model
    preamble = args.preamble

    def answer(unit: list[str]) -> list[Any]:
        request = completion.completion_request(unit[0])
        return [(request.preamble(preamble) if preamble else request).send().text]

    return answer, 1, job


class _UnitJournal:
    """Journals a unit of several items (a chunk of texts) as one line per item, and keeps each
    item's outcome for the results file. The command binds the journal and looks items up itself."""

    def __init__(self, journal: Any, units: list[list[int]], items: list[tuple[Any, str]], prints: list[str],
                 outcomes: dict[int, tuple[Any, bool]]) -> None:
        self._journal = journal
        self._units = units
        self._items = items
        self._prints = prints
        self._outcomes = outcomes

    def begin(self, job: str, *, on_mismatch: str = "refuse") -> None:
        pass  # bound by the command

    def take(self, item: str) -> tuple[bool, Any]:
        return False, None  # units are built from unfinished items only

    def record(self, index: int, outcome: Any, ok: bool, *, item: str = "") -> None:
        for k, i in enumerate(self._units[index]):
            self._outcomes[i] = (outcome[k] if ok else outcome), ok
            self._journal.record(i, self._outcomes[i][0], ok, item=self._prints[i], id=self._items[i][0])

    def hold(self) -> None:
        self._journal.hold()

    def release(self) -> None:
        self._journal.release()

    def close(self) -> None:
        pass  # the command closes the real journal


def _write_in_order(out: str, job: str, items: list[tuple[Any, str]], prints: list[str],
                    outcomes: dict[int, tuple[Any, bool]]) -> None:
    """Rewrite the journal as the result file: one line per input item, in input order (written
    as a journal, so that the next run reuses it)."""
    from .journal import Journal

    tmp = f"{out}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a run that died here: start it afresh
    with Journal(tmp) as fresh:
        fresh.begin(job)
        for i, (item_id, _) in enumerate(items):
            fresh.record(i, *outcomes[i], item=prints[i], id=item_id)
    os.replace(tmp, out)
