"""`edgedet doctor`: check this machine for running the detector; one line of fix per problem.

Prints a table (``--json``: one JSON document) of OK / WARN / FAIL / SKIP lines and exits
0 when nothing failed, 1 otherwise. The config is ``--config FILE``, else the one the
installed unit passes (``/etc/edgedet/config.yaml``), else the defaults; a config that
does not validate is itself a FAIL line and the other checks use the defaults.
``--root DIR`` reads /sys, /proc, /dev, /etc ... under DIR (a mounted SD card, a test
fixture).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="check the environment (Python, interpreter, model, camera, Coral, Pi, service)",
        description="Check what the detector needs on this machine: Python, NumPy and the "
        "interpreter, the model and its card, the camera, the Coral Edge TPU, the Pi's "
        "power and temperature, the systemd service, the broker, the HTTP port and the "
        "output directories. Each problem comes with one line of fix. Exit code 0 when "
        "nothing fails, 1 otherwise.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="edgedet config (default: the installed unit's, /etc/edgedet/config.yaml)",
    )
    p.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="read /sys, /proc, /dev, /etc ... under DIR instead of / (e.g. a mounted image)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--only",
        metavar="AREAS",
        help="comma-separated areas to check: python, model, camera, edgetpu, board, "
        "service, outputs (default: all)",
    )
    p.set_defaults(func=main)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_context(root: Path, config: str | None):
    """The `Context` for ``root``: the config the service would read, loaded the way
    `edgedet run` loads it (under the unit's LOGS_DIRECTORY/STATE_DIRECTORY)."""
    from edgedet.cli.service import CONFIG_PATH, UNIT_DIR, UNIT_NAME
    from edgedet.doctor import Context
    from edgedet.doctor.service import read_unit, service_environment, unit_config
    from edgedet.errors import ConfigError
    from edgedet.models import bundled_model_path
    from edgedet.service.config import load_config

    unit_path = root / UNIT_DIR / UNIT_NAME
    unit = read_unit(unit_path)
    if config is not None:
        path: Path | None = Path(config)
        if not path.is_file():
            raise ConfigError(f"--config {config}: not a file; pass an existing config file")
    else:
        named = unit_config(unit) or f"/{CONFIG_PATH}"
        path = root / named.lstrip("/")
        if not path.is_file():
            path = None
    error = None
    with _environ(service_environment(unit)):
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            error = str(exc)
            cfg = load_config(None)
    return Context(
        root=root,
        cfg=cfg,
        config_path=path,
        config_error=error,
        bundled_model=bundled_model_path(),
        unit_path=unit_path,
    )


def main(args: argparse.Namespace) -> int:
    from edgedet.doctor import AREAS, all_checks, exit_code, run_checks
    from edgedet.errors import ConfigError

    root = Path(args.root)
    if not root.is_dir():
        raise ConfigError(f"--root {args.root}: not a directory; pass / or a mounted root")
    areas = None
    if args.only:
        areas = [a.strip() for a in args.only.split(",") if a.strip()]
        unknown = [a for a in areas if a not in AREAS]
        if unknown or not areas:
            raise ConfigError(
                f"--only {args.only}: unknown area {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(AREAS)}"
            )
    ctx = build_context(root, args.config)
    results = run_checks(ctx, all_checks(areas))
    code = exit_code(results)
    if args.json:
        json.dump(
            {
                "root": str(root),
                "config": str(ctx.config_path) if ctx.config_path else None,
                "exit_code": code,
                "checks": [r.to_dict() for r in results],
            },
            sys.stdout,
            indent=1,
            default=str,
        )
        sys.stdout.write("\n")
    else:
        print_table(results, sys.stdout)
    return code


def print_table(results, out: TextIO) -> None:
    """STATUS AREA CHECK DETAIL rows; a non-OK row's fix on the line below it."""
    area_w = max(len(r.area) for r in results)
    check_w = max(len(r.check) for r in results)
    indent = " " * (4 + 2 + area_w + 2 + check_w + 2)
    out.write(f"{'':4}  {'AREA':<{area_w}}  {'CHECK':<{check_w}}  DETAIL\n")
    for r in results:
        out.write(f"{r.status:<4}  {r.area:<{area_w}}  {r.check:<{check_w}}  {r.detail}\n")
        if r.fix and r.status in ("WARN", "FAIL"):
            out.write(f"{indent}fix: {r.fix}\n")
    counts = {s: sum(r.status == s for r in results) for s in ("OK", "WARN", "FAIL", "SKIP")}
    out.write(", ".join(f"{n} {s}" for s, n in counts.items()) + "\n")
