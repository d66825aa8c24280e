"""Native stderr while an interpreter is built: the runtime's banner is dropped, every
other line is forwarded, and a crash still leaves its traceback (issue 10, point 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNER = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


def run_child(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_a_crash_while_stderr_is_filtered_still_prints_the_native_message_and_traceback():
    done = run_child(
        """
        import faulthandler, os
        from edgedet.backends import _without_native_info_lines

        def build_interpreter():
            os.write(2, b"native: about to fail\\n")  # what C++ code prints before dying
            faulthandler._sigsegv()

        faulthandler.enable()
        with _without_native_info_lines():
            os.write(2, b"%s\\n" % BANNER.encode())
            build_interpreter()
        """.replace("BANNER", repr(BANNER))
    )
    assert done.returncode == -signal.SIGSEGV
    assert "native: about to fail" in done.stderr
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "in build_interpreter" in done.stderr  # the Python stack of the crash
    assert BANNER not in done.stderr
    lines = done.stderr.splitlines()
    assert lines.index("native: about to fail") < lines.index(
        "Fatal Python error: Segmentation fault"
    )


def test_building_an_interpreter_forwards_everything_but_the_banner(bundled_model):
    done = run_child(
        f"""
        import os, sys
        from edgedet.backends import _without_native_info_lines, get_backend

        backend = get_backend("auto")
        content = open({str(bundled_model)!r}, "rb").read()
        with _without_native_info_lines():
            os.write(2, b"before\\n")
            backend.interpreter(content)
            print("python line", file=sys.stderr)
            os.write(2, b"partial line without newline")
        os.write(2, b"after\\n")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "before",
        "python line",
        "partial line without newline",
        "after",
    ]


def test_edgedet_run_enables_faulthandler(tmp_path, sample_clip):
    # The crash report needs faulthandler on in the service itself, not only in tests.
    done = run_child(
        f"""
        import faulthandler, sys
        from edgedet.cli import main
        code = main(["run", "--source", {str(sample_clip)!r}, "--max-frames", "1",
                     "--http", "off", "--log", "off", "--no-summary"])
        print("enabled" if faulthandler.is_enabled() else "disabled")
        sys.exit(code)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "enabled"
