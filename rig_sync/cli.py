"""`python -m rig_sync …` / `rig-sync …`: the demo and the provider capability matrix."""

from __future__ import annotations

import argparse
import sys


def _providers(_: argparse.Namespace) -> int:
    """The capability matrix, read from the provider classes themselves (nothing listed by hand)."""
    from .client.builder import builtin_provider_names, load_provider

    print("| provider | env | default base URL | capabilities (C S E T I A tools) |")
    print("|---|---|---|---|")
    for name in builtin_provider_names():
        cls = load_provider(name)
        caps = set(cls.capabilities())
        if "completion" in caps:
            if cls.streams_completions:
                caps.add("streaming")
            if cls.supports_tools:
                caps.add("tools")
        env = ", ".join((*cls.env_api_key, *cls.env_options, *cls.env_base_url))
        letters = " ".join(short for cap, short in _COLUMNS if cap in caps)
        print(f"| {name} | {env} | {cls.default_base_url or '-'} | {letters} |")
    return 0


# Capability -> its letter in the matrix, in column order.
_COLUMNS = (("completion", "C"), ("streaming", "S"), ("embeddings", "E"), ("transcription", "T"),
            ("image_generation", "I"), ("audio_generation", "A"), ("tools", "tools"))


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(offline=args.offline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rig_sync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the end-to-end tour (offline unless real keys are set)")
    demo.add_argument("--offline", action="store_true", help="use the loopback fake provider even with real keys")
    demo.set_defaults(run=_demo)
    providers = commands.add_parser("providers", help="print the provider capability matrix")
    providers.set_defaults(run=_providers)
    from ._batch_cli import add_parser as add_batch

    add_batch(commands)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
