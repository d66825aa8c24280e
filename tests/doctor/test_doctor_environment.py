"""`edgedet doctor` on the running environment: broker, HTTP port, model and card, NumPy
copies, the interpreter package, and the real machine (``--root /``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import support.broker as mqtt_helper
from doctorroot import REPO, doctor, one
from support.service import run_edgedet
from support.waiting import free_port


def test_broker_reachable(fake_root, broker):
    fake_root.config(f"mqtt: {{enabled: true, host: 127.0.0.1, port: {broker.port}}}\n")
    _, doc, _ = doctor(fake_root.path, "--only", "outputs")
    found = one(doc, "outputs", "mqtt broker")
    assert found["status"] == "OK", found
    assert found["detail"] == f"127.0.0.1:{broker.port} accepts TCP connections"


def test_broker_on_a_closed_port(fake_root, stopped_broker_port):
    fake_root.config(f"mqtt: {{enabled: true, host: 127.0.0.1, port: {stopped_broker_port}}}\n")
    rc, doc, _ = doctor(fake_root.path, "--only", "outputs")
    found = one(doc, "outputs", "mqtt broker")
    assert found["status"] == "FAIL"
    assert (
        f"cannot connect to 127.0.0.1:{stopped_broker_port}: Connection refused" in found["detail"]
    )
    assert "mosquitto" in found["fix"]
    assert rc == 1


@pytest.fixture
def stopped_broker_port(tmp_path):
    """A port where a real mosquitto listened and no longer does."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = mqtt_helper.Broker(workdir).start()
    b.stop()
    return b.port


def test_http_port_taken_by_another_program(fake_root):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        fake_root.config(f"http: {{host: 127.0.0.1, port: {port}}}\n")
        rc, doc, _ = doctor(fake_root.path, "--only", "outputs")
    found = one(doc, "outputs", "http port")
    assert found["status"] == "FAIL" and "in use by another program" in found["detail"]
    assert f"sport = :{port}" in found["fix"]
    assert rc == 1


@pytest.mark.parametrize(("healthy", "status"), [(True, "OK"), (False, "WARN")])
def test_http_port_held_by_a_running_edgedet(fake_root, healthy, status):
    from edgedet.publishers.http import HttpPublisher

    try:
        from edgedet.metrics import Metrics  # where issue 7's layering puts it
    except ModuleNotFoundError:
        from edgedet.service.metrics import Metrics

    pub = HttpPublisher("127.0.0.1", 0, metrics=Metrics(), healthy=lambda: healthy)
    try:
        fake_root.config(f"http: {{host: 127.0.0.1, port: {pub.port}}}\n")
        _, doc, _ = doctor(fake_root.path, "--only", "outputs")
    finally:
        pub.close()
    found = one(doc, "outputs", "http port")
    assert found["status"] == status, found
    assert "running edgedet" in found["detail"]


def test_free_http_port(fake_root):
    port = free_port()
    fake_root.config(f"http: {{host: 127.0.0.1, port: {port}}}\n")
    _, doc, _ = doctor(fake_root.path, "--only", "outputs")
    assert one(doc, "outputs", "http port")["detail"] == f"127.0.0.1:{port} is free"


def test_model_that_does_not_match_its_card(fake_root, bundled_model):
    models = fake_root.path / "opt/models"
    models.mkdir(parents=True)
    copy = models / bundled_model.name
    data = bytearray(bundled_model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a weight byte: still a valid flatbuffer
    copy.write_bytes(bytes(data))
    shutil.copy(bundled_model.with_suffix(".yaml"), models)
    fake_root.config(f"model: {{path: /opt/models/{bundled_model.name}}}\n")
    rc, doc, _ = doctor(fake_root.path)
    assert one(doc, "model", "model file")["detail"].startswith(f"/opt/models/{bundled_model.name}")
    assert one(doc, "model", "card")["status"] == "OK"
    sha = one(doc, "model", "sha256")
    assert sha["status"] == "FAIL" and "does not match its card" in sha["detail"]
    assert rc == 1


def test_model_without_card_and_a_missing_model(fake_root, bundled_model):
    models = fake_root.path / "opt/models"
    models.mkdir(parents=True)
    shutil.copy(bundled_model, models)
    fake_root.config(f"model: {{path: /opt/models/{bundled_model.name}}}\n")
    _, doc, _ = doctor(fake_root.path)
    card = one(doc, "model", "card")
    assert card["status"] == "WARN" and "no card" in card["detail"]
    assert one(doc, "model", "full-integer")["status"] == "OK"

    fake_root.config("model: {path: /opt/models/absent.tflite}\n")
    rc, doc, _ = doctor(fake_root.path)
    found = one(doc, "model", "model file")
    assert found["status"] == "FAIL" and "does not exist" in found["detail"]
    assert one(doc, "model", "full-integer")["status"] == "SKIP"
    assert rc == 1


def test_pip_numpy_shadowing_apts(fake_root, tmp_path):
    """A --system-site-packages venv: pip's NumPy 2 before apt's 1.24 (Debian egg-info)."""
    apt_site = tmp_path / "usr/lib/python3/dist-packages"
    egg = apt_site / "numpy-1.24.2.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.24.2\n")
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", ""), str(apt_site)])
    _, doc, _ = doctor(fake_root.path, "--only", "python", env={"PYTHONPATH": path})
    found = one(doc, "python", "numpy")
    import numpy

    if numpy.__version__.startswith("1."):
        pytest.skip("this venv has NumPy 1: no clash with a 1.24 copy to show")
    assert found["status"] == "WARN", found
    assert f"{numpy.__version__} (pip, this venv" in found["detail"]
    assert f"shadows numpy 1.24.2 (apt: {apt_site})" in found["detail"]
    assert "numpy.dtype size changed" in found["detail"]
    assert "pip uninstall numpy" in found["fix"] and "numpy==1.24.2" in found["fix"]


@pytest.mark.skipif(
    importlib.util.find_spec("tflite_runtime") is not None, reason="tflite-runtime is installed"
)
def test_configured_backend_not_installed(fake_root):
    fake_root.config("model: {backend: tflite_runtime}\n")
    rc, doc, _ = doctor(fake_root.path)
    found = one(doc, "python", "interpreter")
    assert found["status"] == "FAIL"
    assert "backend 'tflite_runtime' is not installed (tflite-runtime)" in found["detail"]
    assert "ai-edge-litert" in found["fix"]
    assert one(doc, "python", "xnnpack")["status"] == "SKIP"
    assert one(doc, "model", "full-integer")["status"] == "SKIP"
    assert rc == 1


def test_tflite_runtime_next_to_numpy_2(fake_root, tmp_path):
    """tflite-runtime 2.14 installed in a NumPy 2 venv: configured, it fails with the fix;
    under ``auto`` the working interpreter is used."""
    import numpy

    if numpy.__version__.startswith("1."):
        pytest.skip("this venv has NumPy 1")
    site = tmp_path / "site"
    package = site / "tflite_runtime"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    # Stands for the 2.14 wheel; get_backend refuses NumPy 2 before importing it.
    (package / "interpreter.py").write_text("raise ImportError('must not be imported')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    fake_root.config("model: {backend: tflite_runtime}\n")
    rc, doc, _ = doctor(fake_root.path, env=env)
    found = one(doc, "python", "interpreter")
    assert found["status"] == "FAIL", found
    assert f"tflite-runtime cannot run with NumPy {numpy.__version__}" in found["detail"]
    assert rc == 1

    # auto takes ai-edge-litert first and never imports the other one
    fake_root.config("model: {backend: auto}\n")
    _, doc, _ = doctor(fake_root.path, env=env)
    found = one(doc, "python", "interpreter")
    assert found["status"] == "OK" and found["facts"]["name"] == "litert"
    assert "tflite_runtime" in found["facts"]["installed"]


def test_interpreter_and_xnnpack_on_this_machine(fake_root):
    _, doc, _ = doctor(fake_root.path)
    interpreter = one(doc, "python", "interpreter")
    assert interpreter["status"] == "OK" and interpreter["facts"]["name"] in (
        "litert",
        "tflite_runtime",
    )
    xnnpack = one(doc, "python", "xnnpack")
    assert xnnpack["status"] in ("OK", "WARN"), xnnpack
    assert xnnpack["facts"]["invoked"] is True


def test_the_real_machine_prints_a_table():
    done = run_edgedet("doctor", "--root", "/", timeout=300, env=dict(os.environ))
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["AREA", "CHECK", "DETAIL"]
    statuses = [line.split()[0] for line in lines[1:-1] if not line.startswith(" ")]
    assert statuses and set(statuses) <= {"OK", "WARN", "FAIL", "SKIP"}
    counts = lines[-1]
    assert counts == ", ".join(f"{statuses.count(s)} {s}" for s in ("OK", "WARN", "FAIL", "SKIP"))
    assert done.returncode == (1 if "FAIL" in statuses else 0)
    for area in ("python", "model", "camera", "edgetpu", "board", "service", "outputs"):
        assert any(line.split()[1] == area for line in lines[1:-1] if not line.startswith(" "))


def test_doctor_never_imports_tensorflow(tmp_path: Path):
    code = (
        "import sys\n"
        "from edgedet.cli import main\n"
        f"rc = main(['doctor', '--root', {str(tmp_path)!r}, '--json'])\n"
        "sys.stderr.write('tensorflow' in sys.modules and 'TF-IMPORTED' or 'no-tf')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stderr.strip().endswith("no-tf"), done.stderr


@pytest.fixture(scope="module")
def edgetpu_model(tmp_path_factory) -> bytes:
    """A real TFLite model with one op named ``edgetpu-custom-op``, as edgetpu_compiler
    writes: the factory's SSD with its custom op's name rewritten in the flatbuffer."""
    pytest.importorskip("tensorflow")
    import modelfactory

    path = modelfactory.cached_model(
        tmp_path_factory.mktemp("doctor_models"),
        "tflite_postprocess",
        num_anchors=8,
        num_classes=2,
        quant="uint8",
    )
    data = bytearray(path.read_bytes())
    old, new = b"TFLite_Detection_PostProcess", b"edgetpu-custom-op"
    at = data.find(old)
    assert at > 4 and int.from_bytes(data[at - 4 : at], "little") == len(old)
    # A flatbuffer string is a length, the bytes and a NUL; the shorter name fits in place.
    data[at - 4 : at] = len(new).to_bytes(4, "little")
    data[at : at + len(old) + 1] = new + bytes(len(old) + 1 - len(new))
    return bytes(data)


@pytest.mark.tensorflow
def test_edgetpu_compiled_model(fake_root, edgetpu_model):
    models = fake_root.path / "opt/models"
    models.mkdir(parents=True)
    (models / "det_edgetpu.tflite").write_bytes(edgetpu_model)
    (models / "det.tflite").write_bytes(edgetpu_model)

    # *_edgetpu.tflite: the Edge TPU is wanted by name, and the model is compiled for it.
    fake_root.config("model: {path: /opt/models/det_edgetpu.tflite}\n")
    _, doc, _ = doctor(fake_root.path)
    compiled = one(doc, "model", "edgetpu compiled")
    assert compiled["status"] == "OK", compiled
    assert compiled["detail"] == "1 edgetpu-custom-op(s) in det_edgetpu.tflite"
    # XNNPACK is checked on the bundled CPU model: the CPU cannot run this one.
    xnnpack = one(doc, "python", "xnnpack")
    assert xnnpack["status"] == "OK" and "ssdlite" in xnnpack["detail"]
    assert one(doc, "edgetpu", "usb")["status"] == "FAIL"  # configured, none attached

    # The same model with the Edge TPU turned off cannot run at all.
    fake_root.config("model: {path: /opt/models/det.tflite, edgetpu: false}\n")
    rc, doc, _ = doctor(fake_root.path)
    compiled = one(doc, "model", "edgetpu compiled")
    assert compiled["status"] == "FAIL" and "the CPU cannot run it" in compiled["detail"]
    assert "model.edgetpu: true" in compiled["fix"]
    assert rc == 1


def test_picamera2_missing_from_this_venv_but_installed_by_apt(fake_root):
    """apt's picamera2 under the root, a venv without --system-site-packages running."""
    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is importable here")
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a venv")
    fake_root.board("Raspberry Pi 5 Model B Rev 1.0")
    (fake_root.path / "usr/lib/python3/dist-packages/picamera2").mkdir(parents=True)
    fake_root.config("source: picamera2\n")
    rc, doc, _ = doctor(fake_root.path, "--only", "camera")
    found = one(doc, "camera", "picamera2")
    assert found["status"] == "FAIL"  # the source needs it
    assert found["detail"] == (
        "picamera2 does not import (ModuleNotFoundError: No module named 'picamera2')"
    )
    assert "--system-site-packages" in found["fix"] and "recreate" in found["fix"]
    assert rc == 1


def test_picamera2_failing_on_a_numpy_abi_clash(fake_root, tmp_path):
    """The import error apt's simplejpeg raises under pip's NumPy 2 is named as such."""
    site = tmp_path / "site"
    (site / "picamera2").mkdir(parents=True)
    # Stands for apt's picamera2, whose simplejpeg extension was built for NumPy 1.x.
    (site / "picamera2" / "__init__.py").write_text(
        "raise ValueError('numpy.dtype size changed, may indicate binary incompatibility. "
        "Expected 96 from C header, got 88 from PyObject')\n"
    )
    fake_root.board("Raspberry Pi 4 Model B Rev 1.4")
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    _, doc, _ = doctor(fake_root.path, "--only", "camera", env=env)
    found = one(doc, "camera", "picamera2")
    assert found["status"] == "WARN"  # source auto may do without
    assert "ValueError: numpy.dtype size changed" in found["detail"]
    assert found["fix"].startswith("NumPy ABI clash")


def test_a_native_crash_in_the_probe_becomes_fail_lines(fake_root, tmp_path, bundled_model):
    """The interpreter probe runs in a child: when it dies by a signal, the doctor names
    the stage it died in and finishes its report."""
    site = tmp_path / "site"
    site.mkdir()
    # In the probe child only: SIGSEGV the moment it opens the model (the summary stage).
    (site / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "if 'edgedet.doctor.probe' in sys.orig_argv:\n"
        "    def hook(event, args):\n"
        "        if event == 'open' and str(args[0]).endswith('crash_me.tflite'):\n"
        "            os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    sys.addaudithook(hook)\n"
    )
    models = fake_root.path / "opt/models"
    models.mkdir(parents=True)
    shutil.copy(bundled_model, models / "crash_me.tflite")
    fake_root.config("model: {path: /opt/models/crash_me.tflite}\n")
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    rc, doc, _ = doctor(fake_root.path, "--only", "python,model", env=env)
    assert one(doc, "python", "interpreter")["status"] == "OK"  # the stage before
    assert one(doc, "model", "model file")["status"] == "OK"  # read by the doctor itself
    ops = one(doc, "model", "full-integer")
    assert ops["status"] == "FAIL"
    assert ops["detail"] == "reading the model's ops crashed the interpreter (killed by SIGSEGV)"
    assert one(doc, "python", "xnnpack")["status"] == "SKIP"
    assert rc == 1
