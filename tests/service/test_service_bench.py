"""`edgedet bench` reports every number it promises (values are measurements, not checked)."""

from __future__ import annotations

import json

from support.service import run_edgedet

from edgedet.cli.bench import update_section


def test_bench_reports_stages_rates_memory_and_no_tensorflow(tmp_path, run_model, clip_factory):
    proc = run_edgedet(
        "bench",
        "--frames",
        "30",
        "--json",
        "--model",
        str(run_model),
        "--source",
        str(clip_factory(20)),
        "--threads",
        "2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["frames"] == 30 and r["threads"] == 2
    assert set(r["stages"]) == {"capture", "preprocess", "invoke", "postprocess", "publish"}
    assert all(v["p50_ms"] is not None and v["p95_ms"] >= v["p50_ms"] for v in r["stages"].values())
    assert r["e2e_fps"] > 0 and r["invoke_only_fps"] > 0
    assert abs(r["ratio"] - r["e2e_fps"] / r["invoke_only_fps"]) < 0.01
    assert r["peak_rss_mb"] > 20
    assert r["time_to_first_detection_s"] is not None  # the clip shows people
    assert r["tensorflow_imported"] is False and r["targets"]["no_tensorflow"] is True
    assert r["machine"]["python"] and r["machine"]["ai-edge-litert"] != "-"


def test_update_replaces_only_the_runtime_section(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(
        "# Benchmarks\n\n## Postprocess\n\nkeep me\n\n## Runtime\n\nold\n\n## Zeta\n\nz\n"
    )
    update_section(str(doc), "new body\n")
    text = doc.read_text()
    assert "keep me" in text and "## Zeta\n\nz" in text
    assert "old" not in text and "new body" in text
    assert text.index("## Postprocess") < text.index("## Runtime") < text.index("## Zeta")
    update_section(str(tmp_path / "fresh.md"), "body\n")
    assert (tmp_path / "fresh.md").read_text().startswith("# Benchmarks\n\n## Runtime")
