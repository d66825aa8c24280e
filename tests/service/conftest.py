"""Fixtures for `edgedet run` end-to-end tests: the bundled model and short real clips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.service import clean_env, edgedet_cmd

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def run_model(bundled_model: Path) -> Path:
    """The model `edgedet run` tests use: the bundled one (real interpreter, real card)."""
    return bundled_model


@pytest.fixture(scope="session")
def clip_factory(sample_clip: Path, tmp_path_factory):
    """``clip_factory(n, fps)``: the first ``n`` frames of the bundled clip as an MJPEG AVI
    declaring ``fps`` (a short real clip; its FPS drives ``--realtime`` pacing)."""
    import cv2

    folder = tmp_path_factory.mktemp("clips")
    made: dict[tuple[int, float], Path] = {}

    def make(n: int, fps: float = 25.0) -> Path:
        if (n, fps) in made:
            return made[(n, fps)]
        cap = cv2.VideoCapture(str(sample_clip))
        path = folder / f"clip_{n}_{fps:g}.avi"
        writer = None
        for _ in range(n):
            ok, image = cap.read()
            assert ok, f"the sample clip has fewer than {n} frames"
            image = cv2.resize(image, (384, 288))  # smaller: faster decode, same people
            if writer is None:
                h, w = image.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
            writer.write(image)
        writer.release()
        cap.release()
        made[(n, fps)] = path
        return path

    return make


@pytest.fixture
def spawn(tmp_path):
    """Start `edgedet run ...` in the background; stderr goes to a file; killed at teardown."""
    procs = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        err = open(tmp_path / f"stderr{len(procs)}.txt", "w+")  # noqa: SIM115 (closed below)
        out = open(tmp_path / f"stdout{len(procs)}.txt", "w+")  # noqa: SIM115
        proc = subprocess.Popen(
            edgedet_cmd("run", *args), stdout=out, stderr=err, env=env or clean_env(), cwd=tmp_path
        )
        proc.stderr_path = Path(err.name)  # type: ignore[attr-defined]
        proc.stdout_path = Path(out.name)  # type: ignore[attr-defined]
        procs.append((proc, err, out))
        return proc

    yield start
    for proc, err, out in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        err.close()
        out.close()
