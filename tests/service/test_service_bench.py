"""`edgedet bench` reports every number it promises (values are measurements, not checked)."""

from __future__ import annotations

import json
import math

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
    # The default config gates on motion and makes events: both are stages of their own.
    assert set(r["stages"]) == {
        "capture",
        "motion",
        "preprocess",
        "invoke",
        "postprocess",
        "events",
        "publish",
    }
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


def test_bench_motion_reports_gated_and_ungated_cpu_invokes_and_person_counts(
    tmp_path, run_model, clip_factory
):
    video = clip_factory(40)  # 1.6 s of people at 25 FPS: the busy clip, and the passages
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Runtime\n\nkeep me\n")
    args = ["bench", "--motion", "--json", "--rounds", "1", "--still-seconds", "1.5"]
    proc = run_edgedet(
        *args,
        "--video",
        str(video),
        "--model",
        str(run_model),
        "--update",
        str(doc),
        cwd=tmp_path,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    clips = {c["clip"]: c for c in r["clips"]}
    assert set(clips) == {"still", "busy"} and r["still_fraction"] > 0.7
    for c in clips.values():
        minutes = c["frames"] / c["fps"] / 60
        for mode in ("gated", "ungated"):
            v = c[mode]
            assert v["cpu_s_per_video_min"] > v["capture_cpu_s_per_video_min"] > 0
            assert v["invokes_per_video_min"] * minutes <= c["frames"] + 0.5
        assert c["ungated"]["skipped"] == 0
        p = c["persons_per_second"]
        assert p["seconds"] == math.ceil(c["frames"] / c["fps"]) and p["equal"] <= p["seconds"]
    # The still clip: most still frames are skipped, every invoke accounted for.
    still = clips["still"]
    assert still["gated"]["skipped"] > still["frames"] / 2
    assert still["gated"]["invokes_per_video_min"] < still["ungated"]["invokes_per_video_min"]
    # Busy vtest frames all move: gating skips none of them.
    assert clips["busy"]["gated"]["skipped"] == 0
    assert set(r["targets"]) >= {"still_ratio_ok", "busy_extra_ok", "nothing_lost"}
    text = doc.read_text()
    assert "keep me" in text and "## Motion gating" in text and "| still | gated |" in text
