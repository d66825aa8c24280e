"""Config validation and flag overrides, through the real `edgedet` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgedet.cli import main as cli_main
from edgedet.errors import ConfigError
from edgedet.service.config import Config, default_config_yaml, load_config

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    """`python -m edgedet ...` in a subprocess: the real exit code and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "edgedet", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def error_line(capsys, *argv: str) -> str:
    """Run the CLI in-process, expect exit 2 and exactly one stderr line; return it."""
    assert cli_main(list(argv)) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_key_names_its_path_and_nearest_name_exit_2_no_traceback(tmp_path):
    cfg = write(tmp_path, "model:\n  min_scor: 0.4\n")
    proc = run_cli("run", "--config", str(cfg))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown key 'model.min_scor'" in lines[0]
    assert "did you mean 'min_score'" in lines[0]
    assert str(cfg) in lines[0]


def test_wrong_type_and_out_of_range_exit_2_with_key_path(tmp_path):
    cfg = write(tmp_path, "source:\n  loop: maybe\n")
    proc = run_cli("run", "--config", str(cfg))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "source.loop: expected true or false, got 'maybe'" in proc.stderr
    proc = run_cli("run", "--min-score", "1.5")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--min-score: model.min_score: expected a number in [0, 1], got 1.5" in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model:\n  iou: high\n", "model.iou: expected a number in [0, 1], got 'high'"),
        ("model:\n  threads: 2.5\n", "model.threads: expected an integer in [1, 64], got 2.5"),
        ("model:\n  threads: true\n", "model.threads: expected an integer"),
        ("http:\n  port: 70000\n", "http.port: expected an integer in [0, 65535], got 70000"),
        ("source:\n  backoff_max: 60\n", "source.backoff_max: expected a number in [0.01, 30]"),
        ("filters:\n  min_score: {person: 2}\n", "filters.min_score.person: expected a number"),
        ("filters:\n  roi: [[0, 0], [1, 1]]\n", "filters.roi: expected a polygon of at least 3"),
        ("filters:\n  roi: [[0, 0], [1, 0], [1, 1.5]]\n", "filters.roi[2][1]: expected a number"),
        ("filters:\n  min_area: 0.5\n  max_area: 0.1\n", "filters.min_area (0.5) must not exceed"),
        ("filters:\n  labels: person\n", "filters.labels: expected a list"),
        ("model:\n  backend: tflite\n", "did you mean 'litert'"),
        ("publishers: {}\n", "unknown key 'publishers'; valid keys: device_id, source"),
        ("snapshot:\n  enabled: true\n", "unknown key 'snapshot'; did you mean 'snapshots'?"),
        ("model: [1, 2]\n", "model: expected a mapping of keys"),
        ("model:\n  path: 3\n", "model.path: expected a string, got 3"),
    ],
)
def test_invalid_values_are_one_line_errors_naming_the_key(tmp_path, capsys, text, expected):
    cfg = write(tmp_path, text)
    line = error_line(capsys, "config", "--config", str(cfg))
    assert expected in line


def test_malformed_yaml_and_missing_file_are_one_line_errors(tmp_path, capsys):
    cfg = write(tmp_path, "model:\n  iou: [0.5\n")
    line = error_line(capsys, "config", "--config", str(cfg))
    assert "not valid YAML at line" in line
    line = error_line(capsys, "config", "--config", str(tmp_path / "absent.yaml"))
    assert "does not exist" in line and "--print-default" in line


def test_flag_errors_name_the_flag(capsys):
    assert "--set model.thread: unknown key 'model.thread'; did you mean 'threads'?" in (
        error_line(capsys, "config", "--set", "model.thread=2")
    )
    assert "--http: expected HOST:PORT" in error_line(capsys, "config", "--http", "localhost:x")
    assert "--iou: model.iou: expected a number" in error_line(capsys, "config", "--iou", "abc")
    assert "--set: expected KEY=VALUE" in error_line(capsys, "config", "--set", "novalue")


def test_flags_override_the_file(tmp_path):
    cfg = write(
        tmp_path,
        "device_id: from-file\nsource: {uri: file.mp4, loop: false}\n"
        "model: {min_score: 0.3, iou: 0.4, threads: 1}\n"
        "http: {port: 9000}\nlog: {path: file.jsonl}\n",
    )
    args = [
        "--config",
        str(cfg),
        "--source",
        "0",
        "--min-score",
        "0.7",
        "--iou",
        "0.45",
        "--http",
        "off",
        "--log",
        "flag.jsonl",
        "--device-id",
        "0123",
        "--loop",
        "--mqtt",
        "broker.local:1884",
        "--threads",
        "3",
        "--max-frames",
        "9",
        "--no-summary",
        "--set",
        "filters.roi=[[0, 0], [1, 0], [1, 1]]",
        "--set",
        "filters.min_score={person: 0.8}",
    ]
    from edgedet.cli import build_parser
    from edgedet.cli.options import config_from_args

    c = config_from_args(build_parser().parse_args(["config", *args]))
    assert c.source.uri == "0" and c.source.loop is True
    assert (c.model.min_score, c.model.iou, c.model.threads) == (0.7, 0.45, 3)
    assert c.http.enabled is False and c.http.port == 9000
    assert c.log.path == "flag.jsonl"
    assert c.device_id == "0123"  # a flag value stays text for a text key
    assert (c.mqtt.enabled, c.mqtt.host, c.mqtt.port) == (True, "broker.local", 1884)
    assert c.mqtt.prefix == "edgedet/0123" and c.mqtt.client_id == "edgedet-0123"
    assert c.service.max_frames == 9 and c.service.summary is False
    assert c.filters.roi == ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))
    assert c.filters.min_score == {"person": 0.8}


def test_log_off_and_source_shorthand(tmp_path):
    cfg = write(tmp_path, "source: /dev/video2\n")
    from edgedet.service.config import Override

    c = load_config(cfg, [Override("log.enabled", "false", "--log")])
    assert c.source.uri == "/dev/video2" and c.log.enabled is False


def test_documented_default_is_exactly_the_default_config(capsys, tmp_path):
    assert cli_main(["config", "--print-default"]) == 0
    printed = capsys.readouterr().out
    assert printed == default_config_yaml()
    documented = tmp_path / "default.yaml"
    documented.write_text(printed)
    assert load_config(documented) == load_config()
    # Every key is shown with its default (none missing, none extra).
    assert yaml.safe_load(printed) == Config().to_dict()


def test_machine_defaults_resolve(monkeypatch, tmp_path):
    monkeypatch.delenv("LOGS_DIRECTORY", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    c = load_config()
    assert c.log.path == "edgedet-detections.jsonl"
    assert c.snapshots.directory == "edgedet-snapshots"
    assert c.device_id == os.uname().nodename
    assert c.http.enabled and (c.http.host, c.http.port) == ("127.0.0.1", 8080)
    assert c.mqtt.enabled is False and c.source.uri == "auto"
    assert c.model.path == str(ROOT / "models" / "ssdlite_mobilenet_v2_person_uint8.tflite")
    monkeypatch.setenv("LOGS_DIRECTORY", f"{tmp_path}/logs:/other")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    c = load_config()
    assert c.log.path == str(tmp_path / "logs" / "detections.jsonl")
    assert c.snapshots.directory == str(tmp_path / "state" / "snapshots")


def test_config_command_prints_the_resolved_config(tmp_path, capsys):
    cfg = write(tmp_path, "model: {min_score: 0.25}\n")
    assert cli_main(["config", "--config", str(cfg), "--http", "127.0.0.1:0"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["model"]["min_score"] == 0.25
    assert resolved["http"]["port"] == 0
    again = write(tmp_path, yaml.safe_dump(resolved))
    assert load_config(again).model.min_score == 0.25  # the printed config loads back


def test_config_error_is_an_edgedet_error_with_exit_code_2(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "service: {stall_timeout: 0}\n"))
    assert info.value.exit_code == 2
    assert "service.stall_timeout: expected a number in [0.5, 3600], got 0" in str(info.value)


def test_backend_choices_are_the_backends_edgedet_knows():
    from edgedet.backends import BACKENDS
    from edgedet.service.config import BACKEND_CHOICES

    assert BACKEND_CHOICES == ("auto", *BACKENDS)
