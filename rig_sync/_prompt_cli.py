"""`rig-sync prompt …`: one question to one model; the answer streams to stdout as it arrives.

    rig-sync prompt "What is a flurbo?" --model openai:gpt-4o-mini
    echo "Summarise this" | rig-sync prompt --model anthropic:claude-3-5-haiku-latest --no-stream
    rig-sync prompt - -m ollama:llama3.2 --system "Answer in French" < question.txt
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `prompt` command on an `argparse` sub-parser set."""
    from .cli import add_model_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prompt", help="ask one model one question; the answer streams to stdout",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default=None, metavar="PROMPT",
                        help="the question; `-` (or nothing, with a pipe) reads it from stdin")
    add_model_arguments(parser, "openai:gpt-4o-mini")
    parser.add_argument("-s", "--preamble", "--system", dest="preamble", default=None, metavar="TEXT",
                        help="the system prompt")
    parser.add_argument("--temperature", type=float, default=None, metavar="T", help="sampling temperature, e.g. 0.2")
    parser.add_argument("--max-tokens", type=int, default=None, metavar="N",
                        help="at most this many tokens in the answer")
    parser.add_argument("--no-stream", dest="stream", action="store_false",
                        help="wait for the whole answer instead of printing it as it arrives")
    parser.set_defaults(run=_main)
    return parser


def _prompt_text(arg: str | None) -> str:
    from .errors import InvalidRequestError

    if arg is None or arg == "-":
        if arg is None and sys.stdin.isatty():
            raise InvalidRequestError('no prompt: give one (rig-sync prompt "question" …) or pipe it on stdin')
        arg = sys.stdin.read().rstrip("\r\n")
    if not arg.strip():
        raise InvalidRequestError("the prompt is empty")
    return arg


def _main(args: argparse.Namespace) -> int:
    from .cli import model_for

    text = _prompt_text(args.prompt)
    model = model_for("completion", args)
    request = model.completion_request(text).temperature(args.temperature).max_tokens(args.max_tokens)
    if args.preamble:
        request = request.preamble(args.preamble)
    out = sys.stdout
    if args.stream and model.client.streams_completions:
        with request.stream() as stream:
            for piece in stream.text_stream():
                out.write(piece)
                out.flush()  # as it arrives, even into a pipe
            reply = stream.response
    else:
        reply = request.send()
        out.write(reply.text)
    if reply.text and not reply.text.endswith("\n"):
        out.write("\n")
    if not reply.text.strip():  # a refusal or a cut-off can leave no text: say so, where a script won't read it
        print(f"rig-sync: the model returned no text (finish reason: {reply.finish_reason})", file=sys.stderr)
    return 0
