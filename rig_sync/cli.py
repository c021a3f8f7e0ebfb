"""`python -m rig_sync …` / `rig-sync …`: the demo and the provider capability matrix."""

from __future__ import annotations

import argparse
import sys


def _providers(_: argparse.Namespace) -> int:
    from .client.builder import builtin_provider_names, load_provider

    columns = ["completion", "streaming", "embeddings", "transcription", "image_generation",
               "audio_generation", "tools"]
    short = {"completion": "C", "streaming": "S", "embeddings": "E", "transcription": "T",
             "image_generation": "I", "audio_generation": "A", "tools": "tools"}
    print("| provider | env | default base URL | capabilities |")
    print("|---|---|---|---|")
    for name in builtin_provider_names():
        cls = load_provider(name)
        caps = set(cls.capabilities())
        if "completion" in caps:
            if cls.streams_completions:
                caps.add("streaming")
            if cls.supports_tools:
                caps.add("tools")
        env = ", ".join(cls.env_api_key + cls.env_base_url)
        print(f"| {name} | {env} | {cls.default_base_url} | {' '.join(short[c] for c in columns if c in caps)} |")
    return 0


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
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
