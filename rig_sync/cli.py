"""`rig-sync …` (or `python -m rig_sync …`): ask a model, run a file of prompts, list providers.

    rig-sync prompt "What is a flurbo?" --model openai:gpt-4o-mini
    rig-sync batch prompts.jsonl --model openai:gpt-4o-mini --out results.jsonl
    rig-sync providers
    rig-sync demo              # offline; `--live` calls the real providers whose keys are set
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client.builder import DynClientBuilder

__all__ = ["main"]

PROG = "rig-sync"


def _providers(_: argparse.Namespace) -> int:
    """The capability matrix, read from the provider classes and the capability table
    (`rig_sync.client.capabilities.TABLE`: its letters, their order and the legend); nothing is
    listed by hand."""
    from .client import capabilities
    from .client.builder import load_provider, provider_names

    print(capabilities.legend())
    print()
    print(f"| provider | env | default base URL | {capabilities.matrix_header()} |")
    print("|---|---|---|---|")
    for name in provider_names():
        cls = load_provider(name)
        env = ", ".join((*cls.env_api_key, *cls.env_options, *cls.env_base_url))
        print(f"| {name} | {env} | {cls.default_base_url or '-'} | {capabilities.matrix_letters(cls)} |")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(live=args.live, media=args.media)


# --- what every command that talks to one model shares -------------------------------------------


def add_model_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """`--model provider:model` (or `--provider` + `--model`), `--api-key`, `--base-url`."""
    parser.add_argument("-m", "--model", required=True, metavar="PROVIDER:MODEL",
                        help=f"the model, e.g. {example} (or a bare model name with --provider)")
    parser.add_argument("--provider", default=None, metavar="NAME",
                        help="provider name, when --model has no 'provider:' prefix")
    parser.add_argument("--api-key", default=None, metavar="KEY",
                        help="API key (default: the provider's environment variable)")
    parser.add_argument("--base-url", default=None, metavar="URL", help="override the provider's base URL")


def model_for(capability: str, args: argparse.Namespace) -> Any:
    """The `capability` model ("completion", "embeddings", …) that `args` name, built through the
    registry. Every mistake is a `RigError` saying which option to fix."""
    from .client import ProviderValue
    from .client.builder import DynClientBuilder, load_provider
    from .errors import MissingAPIKeyError

    builder = DynClientBuilder()
    provider, model = _target(builder, args.provider, args.model)
    cls = load_provider(provider)
    value = None
    if args.base_url or args.api_key:  # a base URL alone still takes the key from the environment
        import os

        key = args.api_key or next((os.environ[n] for n in cls.env_api_key if os.environ.get(n)), None)
        value = ProviderValue(key, base_url=args.base_url)
    try:
        return builder.model(capability, provider, model, value)
    except MissingAPIKeyError:
        raise MissingAPIKeyError(f"no API key for {provider}: pass --api-key or set "
                                 f"{' or '.join(cls.env_api_key)}") from None


def _target(builder: DynClientBuilder, provider: str | None, model: str) -> tuple[str, str]:
    """`(provider, model)` from `--model p:m`, or `--provider p --model m` (where the model may
    hold colons of its own, as in `--provider ollama --model llama3:8b`)."""
    from .client.builder import split_model_id
    from .errors import InvalidIdString, UnknownProvider

    if provider is None:
        if ":" not in model:
            example = model.strip() if model.strip().isprintable() and " " not in model.strip() else "gpt-4o-mini"
            raise InvalidIdString(f"--model {model!r} names no provider: write it as provider:model "
                                  f"(e.g. openai:{example or 'gpt-4o-mini'}) or add --provider")
        prefix, name = split_model_id(model)
        return builder.factory(prefix).name, name
    provider = builder.factory(provider).name
    if ":" in model:
        try:
            prefix, name = split_model_id(model)
            prefix = builder.factory(prefix).name
        except (InvalidIdString, UnknownProvider):  # a colon of the model's own: llama3:8b, vendor/model:free
            return provider, model.strip()
        if prefix != provider:
            raise InvalidIdString(f"--provider {provider} conflicts with --model {model!r}; "
                                  f"name the provider once, e.g. --model {prefix}:{name}")
        return provider, name
    return provider, model.strip()


# --- the program ---------------------------------------------------------------------------------


class _Help(argparse.RawDescriptionHelpFormatter):
    """The examples kept as written; room for a command's name before its one-line summary."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=16)


def _parser() -> argparse.ArgumentParser:
    from ._batch_cli import add_parser as add_batch
    from ._prompt_cli import add_parser as add_prompt

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=_Help)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    add_prompt(commands)
    add_batch(commands)
    providers = commands.add_parser("providers", help="print the provider capability matrix",
                                    description="The provider capability matrix, with each provider's variables.")
    providers.set_defaults(run=_providers)
    demo = commands.add_parser(
        "demo", help="offline tour on a built-in fake; --live calls real providers",
        description="An end-to-end tour. By default it runs offline against rig_sync.testing.FakeProvider, "
                    "whatever keys the environment holds: no request leaves 127.0.0.1 and nothing is spent.")
    mode = demo.add_mutually_exclusive_group()
    mode.add_argument("--live", action="store_true",
                      help="call the real providers whose keys are set (cheap text steps only); "
                           "prints what it will call first")
    mode.add_argument("--offline", action="store_true", help=argparse.SUPPRESS)  # the default; kept for old scripts
    demo.add_argument("--media", action="store_true",
                      help="with --live, also run the paid media steps (transcription, image, speech)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code. A `RigError` becomes one line on stderr
    (exit 2 when the command was refused before any request, 1 when a request failed)."""
    from .errors import ClientBuildError, InvalidRequestError, RigError

    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # a reader gone early (`| head`) shows here, where it is handled
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except RigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ClientBuildError, InvalidRequestError)) else 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit finds no closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured, replaced): nothing to flush
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
