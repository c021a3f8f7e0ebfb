"""`rig-sync batch … --provider-batch`, `batch status JOB` and `batch fetch JOB`: the `batch`
command over the providers' own batch APIs (`rig_sync.batch.submit`); see `_batch_cli`.

The results file is the same as without --provider-batch (and so is resume from it: a line
answered before is not sent again); the jobs themselves are journaled in RESULTS.jobs, which a
rerun reattaches through and which is removed once every job has ended and the results are written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from . import _json
from .errors import RigError

__all__ = ["provider_job", "status", "fetch"]


def provider_job(args: argparse.Namespace, mode: str, items: list[tuple[Any, str]]) -> int:
    """Send the lines not yet answered as batch jobs, wait for them, write the results file."""
    from . import batch
    from ._batch_cli import finish, model_and_job, open_results

    model, job = model_and_job(args, mode)
    journal, prints, outcomes = open_results(args, job, items)
    jobs_path = f"{args.out}.jobs"
    try:
        todo = [i for i in range(len(items)) if i not in outcomes]
        if todo:
            requests: list[Any] = [items[i][1] for i in todo]
            if mode != "embed" and args.preamble:
                requests = [model.completion_request(text).preamble(args.preamble) for text in requests]
            handle = batch.submit(model, requests, journal=jobs_path)
            ids = ", ".join(handle.job_ids) or "none (answers journaled earlier)"
            print(f"rig-sync batch: {len(todo)} lines in {model.provider} batch job(s) {ids}; waiting for the answers "
                  f"(Ctrl-C to stop waiting; `rig-sync batch status JOB --model {model.provider}:{model.model}`)",
                  file=sys.stderr)
            results, pending = _wait(handle, args)
            for k, i in enumerate(todo):
                if k not in pending:
                    value = results[k]
                    ok = not isinstance(value, BaseException)
                    outcomes[i] = (_value(value) if ok else value), ok
                    journal.record(i, outcomes[i][0], ok, item=prints[i], id=items[i][0])
            if pending:
                print(f"rig-sync batch: {len(items) - len(pending)} of {len(items)} lines done in {args.out}; "
                      "run the same command again to reattach to the jobs", file=sys.stderr)
                return 130
    finally:
        journal.close()
    code = finish(args, job, items, prints, outcomes)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(jobs_path)  # every job ended and every answer is in the results file
    return code


def status(args: argparse.Namespace, job_ids: list[str]) -> int:
    """Print each job's state and counts."""
    from .batch_jobs import jobs_client
    from .cli import model_for

    client = jobs_client(model_for("completion", args))
    for job_id in job_ids:
        job = client.job(job_id)
        total = f"/{job.total}" if job.total is not None else ""
        counts = f"{job.succeeded if job.succeeded is not None else '?'}{total} answered"
        failed = f", {job.failed} failed" if job.failed else ""
        why = f" ({job.error})" if job.error else ""
        print(f"{job.id}  {job.state}  {counts}{failed}{why}")
    return 0


def fetch(args: argparse.Namespace, mode: str, job_id: str) -> int:
    """Wait for one job and write its answers, keyed by the job's custom ids, to `--out`."""
    from . import batch
    from .cli import model_for

    handle = batch.attach(model_for("embeddings" if mode == "embed" else "completion", args), job_id)
    results, pending = _wait(handle, args)
    if pending:
        return 130
    tmp = f"{args.out}.tmp"
    failed = 0
    with open(tmp, "wb") as fh:
        for index, (custom_id, value) in enumerate(zip(handle.custom_ids, results, strict=True)):
            line: dict[str, Any] = {"index": index, "id": custom_id, "ok": not isinstance(value, BaseException)}
            if line["ok"]:
                line["result"] = _value(value)
            else:
                failed += 1
                line["error"] = {"type": type(value).__name__, "message": str(value)}
            fh.write(_json.dumps_file(line) + b"\n")
    os.replace(tmp, args.out)
    print(f"rig-sync batch: {len(results) - failed} of {len(results)} answers of {job_id}, {failed} failed "
          f"-> {args.out}", file=sys.stderr)
    return 1 if failed else 0


def _value(result: Any) -> Any:
    """What the results file keeps of an answer: a completion's text, an embedding's vector."""
    vec = getattr(result, "vec", None)
    return vec if vec is not None else result.text


def _wait(handle: Any, args: argparse.Namespace) -> tuple[list[Any], list[int]]:
    """Wait for `handle`'s jobs: (results with failures in place, the items not done). Ctrl-C asks
    whether to cancel the jobs or leave them running; the items not done are then returned."""
    from .batch_jobs import BatchJobInterrupted

    try:
        return handle.wait(progress=args.progress, poll=args.poll, return_exceptions=True), []
    except BatchJobInterrupted as exc:
        ids = ", ".join(exc.job_ids)
        if exc.job_ids and _ask(f"\nrig-sync batch: stopped waiting. Cancel the job(s) {ids} at {handle.provider} "
                                "as well? Answers made so far are kept. [y/N] "):
            try:
                handle.cancel()
                print(f"rig-sync batch: cancel asked for {ids}; run the same command again to collect what was "
                      "answered", file=sys.stderr)
            except RigError as error:
                print(f"rig-sync batch: could not cancel {ids}: {error}", file=sys.stderr)
        elif exc.job_ids:
            print(f"rig-sync batch: left running: {ids}", file=sys.stderr)
        return [exc.failures.get(i, r) for i, r in enumerate(exc.results)], exc.pending


def _ask(question: str) -> bool:
    """A yes/no question on the terminal; no (leave the jobs running) unless the answer is yes."""
    print(question, end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (KeyboardInterrupt, OSError, ValueError):  # a second Ctrl-C, or no usable stdin
        answer = ""
    if not answer.endswith("\n"):
        print(file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")
