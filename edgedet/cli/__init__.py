"""The `edgedet` command: one subcommand module each, imported only when chosen.

Each subcommand module exposes ``add_parser(subparsers)`` and ``main(args) -> int``.
User errors (``EdgedetError``) become one line on stderr and exit code 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edgedet import __version__
from edgedet.errors import EdgedetError

# subcommand name -> module under edgedet.cli, in the order `--help` lists them.
SUBCOMMANDS = {
    "detect": "detect",
    "run": "run",
    "convert": "convert",
    "config": "config",
    "bench": "bench",
    "tune": "tune",
    "service": "service",
    "doctor": "doctor",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgedet", description="Object detection on edge devices, kept running there."
    )
    parser.add_argument("--version", action="version", version=f"edgedet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        try:
            module = importlib.import_module(f"edgedet.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"edgedet.cli.{module_name}":
                raise
            continue  # subcommand not part of this build
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgedetError as exc:
        if args.debug:
            raise
        print(f"edgedet {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
