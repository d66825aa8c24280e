"""The `edgedet convert` command line: flag parsing, and staying light for other commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgedet.cli.convert import parse_labels, parse_range, parse_size
from edgedet.errors import InputError


def test_every_edgedet_command_loads_the_convert_module_without_tensorflow():
    """The dispatcher imports edgedet.cli.convert for `--help` of every subcommand."""
    code = (
        "import sys\n"
        "from edgedet.cli import build_parser\n"
        "build_parser().parse_args(['convert', 'x.pb', '--out', 'y.tflite', '--calib', 'z'])\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parse_size():
    assert parse_size("320x240") == (320, 240)
    assert parse_size("300X300") == (300, 300)
    assert parse_size(None) is None
    for bad in ("300", "axb", "0x10", "-1x5"):
        with pytest.raises(InputError, match="--input-size"):
            parse_size(bad)


def test_parse_range():
    assert parse_range("0:475") == (0, 475)
    assert parse_range("100:") == (100, None)
    assert parse_range(":50") == (0, 50)
    for bad in ("5", "a:b", "10:10", "10:3", "-1:4"):
        with pytest.raises(InputError, match="--calib-range"):
            parse_range(bad)


def test_parse_labels_inline_or_file(tmp_path):
    assert parse_labels("person") == ["person"]
    assert parse_labels("bright, dark") == ["bright", "dark"]
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    assert parse_labels(str(labels)) == ["cat", "dog"]
    with pytest.raises(InputError, match="missing.txt"):
        parse_labels(str(tmp_path / "missing.txt"))
