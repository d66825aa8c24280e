"""`edgedet run`: the on-device service (camera → detector → local publishers)."""

from __future__ import annotations

import argparse

from edgedet.cli.options import add_config_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the detector on a camera, stream, video file or image folder",
        description="Run the detection service: read frames from the source, detect, and "
        "publish records (JSON-lines log, MQTT, loopback HTTP, snapshots). With no camera "
        "and no --source it processes the bundled sample clip and exits. See "
        "`edgedet config --print-default` for every key.",
    )
    add_config_arguments(p)
    p.set_defaults(func=main)


def setup_logging() -> None:
    """One line per event on stderr; journald adds its own timestamps under systemd."""
    import logging
    import os
    import sys

    fmt = "%(levelname)s %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    root = logging.getLogger("edgedet")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def main(args: argparse.Namespace) -> int:
    """Exit 0 when the source ended, max_frames was reached or a signal stopped the run."""
    import faulthandler
    import sys

    # A native crash (interpreter, camera stack) prints every thread's Python stack to
    # stderr, which is the journal under systemd; otherwise it would die without a word.
    faulthandler.enable(all_threads=True)

    from edgedet.cli.options import overrides_from_args
    from edgedet.service.config import load_config
    from edgedet.service.runner import run_service

    overrides = overrides_from_args(args)
    cfg = load_config(args.config, overrides)  # validated before anything starts
    setup_logging()
    run_service(cfg, config_path=args.config, overrides=overrides, summary_stream=sys.stdout)
    return 0
