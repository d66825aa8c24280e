"""The layers in docs/ARCHITECTURE.md hold: no module imports a higher layer.

The contract lives in pyproject.toml ([tool.importlinter]); import-linter checks every
import, including the lazy ones inside functions and those under TYPE_CHECKING.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import edgedet

ROOT = Path(__file__).resolve().parents[1]
CHECK = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports({!r}, no_cache=True, no_logo=True))"
)


def _layers() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: import-linter depends on tomli there
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return contract["layers"]


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHECK.format(str(config))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_no_module_imports_a_higher_layer() -> None:
    done = _lint(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_package_and_module_of_edgedet_is_in_a_layer() -> None:
    named = {name.strip() for layer in _layers() for name in layer.split("|")}
    here = Path(edgedet.__file__).parent
    present = {p.name for p in here.iterdir() if (p / "__init__.py").exists()}
    present |= {p.stem for p in here.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert present == named


def test_the_contract_reports_an_upward_import(tmp_path: Path) -> None:
    # The same contract with two layers swapped must fail: the check can see violations.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    swapped = text.replace('"publishers | sources",', '"publishers | sources | service",', 1)
    swapped = swapped.replace('"service | convert",', '"convert",', 1)
    assert swapped != text
    config = tmp_path / "pyproject.toml"
    config.write_text(swapped, encoding="utf-8")
    done = _lint(config)
    assert done.returncode != 0
    assert "edgedet.service" in done.stdout
