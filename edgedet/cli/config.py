"""`edgedet config`: print the documented default config, or check a config and flags."""

from __future__ import annotations

import argparse
import sys

from edgedet.cli.options import add_config_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "config",
        help="print the default config, or validate a config file and flags",
        description="Print the documented default config (--print-default), or validate "
        "--config FILE together with any flags and print the resolved configuration.",
    )
    p.add_argument(
        "--print-default", action="store_true", help="print the commented default config YAML"
    )
    add_config_arguments(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Exit 0 after printing; a bad config raises ConfigError (one line, exit 2)."""
    import yaml

    from edgedet.cli.options import config_from_args
    from edgedet.service.config import default_config_yaml

    if args.print_default:
        sys.stdout.write(default_config_yaml())
        return 0
    cfg = config_from_args(args)
    sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return 0
