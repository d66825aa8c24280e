#!/usr/bin/env bash
# `make pi-check`: install edgedet in an emulated Raspberry Pi OS (Debian bookworm arm64
# under qemu-user) exactly as README.md's Pi section says, run it, and compare its
# detections with this (x86-64) machine's.
#
# For each recipe marked `<!-- pi-check: NAME venv=DIR -->` in README.md (the fenced sh
# block after the marker), in one cached arm64 root:
#   1. run the block as root (`sudo ` dropped; `'edgedet[...]'` installs this checkout;
#      `systemctl` skipped: no systemd in a chroot; `service install` gets --dry-run --root /);
#   2. the golden input-tensor hashes (tools/input_tensor_hashes.py); `edgedet detect
#      --json` and `edgedet run --max-frames` on the first frames of the bundled clip as
#      decoded here (PNG), compared with the same commands run here: the detections must
#      be identical (label, class, score and box, compared exactly; with tflite-runtime,
#      whose kernels differ between the architectures, agree). `edgedet run` on the
#      clip itself is compared and reported only: FFmpeg decodes its MPEG-4 Part 2 video
#      to other pixels on aarch64 (IDCT), so those detections legitimately differ;
#   3. `edgedet service install --dry-run --root /`;
#   4. recipe `system` only: the venv uses apt's NumPy, apt's NumPy-built extension
#      (python3-opencv's cv2) imports in it, and `source: auto` with a config and no
#      camera fails with one line naming the picamera2 import error.
#
# Needs root, mmdebstrap and qemu-user-static (installed with apt-get when missing) and
# network access to deb.debian.org and the Python package index. Environment:
#   EDGEDET_PI_CHECK_CACHE   cache directory (default /var/cache/edgedet-pi-check): the
#                            arm64 root (rebuilt when its package list changes) and pip's
#                            download cache; remove it to start from scratch.
#   EDGEDET_PI_CHECK_BOARD   pi4 (default, QEMU_CPU=cortex-a72) or pi5 (cortex-a76).
#   EDGEDET_PI_CHECK_RECIPES recipes to run (default: every marked one).
#   EDGEDET_PI_CHECK_MIRROR  Debian mirror (default http://deb.debian.org/debian).
#   PYTHON, TFLITE_PYTHON    the x86-64 reference environments (default .venv/bin/python,
#                            .venv-tflite-runtime/bin/python for backend=tflite_runtime).
#
# python3-picamera2 (and its simplejpeg, libcamera) are in the Raspberry Pi OS archive
# only, not in Debian: the root gets python3-numpy in its place, and apt's python3-opencv
# plays the part of an apt extension built against apt's NumPy 1.24.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${EDGEDET_PI_CHECK_CACHE:-/var/cache/edgedet-pi-check}
BOARD=${EDGEDET_PI_CHECK_BOARD:-pi4}
MIRROR=${EDGEDET_PI_CHECK_MIRROR:-http://deb.debian.org/debian}
HOST_PY=${PYTHON:-$REPO/.venv/bin/python}
HOST_TFLITE_PY=${TFLITE_PYTHON:-$REPO/.venv-tflite-runtime/bin/python}
FRAMES=${EDGEDET_PI_CHECK_FRAMES:-40}
ROOT=$CACHE/bookworm-arm64
OUT=$CACHE/results
case $BOARD in
pi4) QEMU_CPU=cortex-a72 ;;
pi5) QEMU_CPU=cortex-a76 ;;
*) echo "pi-check: EDGEDET_PI_CHECK_BOARD=$BOARD: use pi4 or pi5" >&2; exit 2 ;;
esac
# Packages every recipe's root has; the recipes' own apt-get lines are added below.
BASE_PACKAGES=(python3 python3-venv python3-pip ca-certificates passwd)
# Raspberry Pi OS archive packages missing from Debian → what stands in for them.
declare -A SUBSTITUTE=([python3-picamera2]=python3-numpy)

t0=$(date +%s)
say() { printf '[pi-check %4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
die() { echo "pi-check: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it builds and chroots into an arm64 root)"
[ -x "$HOST_PY" ] || die "$HOST_PY not found; run \`make venv\` or set PYTHON"

# --- README recipes ---------------------------------------------------------------------
recipe_names() { sed -n 's/^<!-- pi-check: \([a-z0-9_-]*\) .*-->$/\1/p' "$REPO/README.md"; }
recipe_attr() { # NAME KEY: the KEY=VALUE of the recipe's marker
    sed -n "s/^<!-- pi-check: $1 .*\<$2=\([^ ]*\).* -->\$/\1/p" "$REPO/README.md"
}
recipe_venv() { recipe_attr "$1" venv; }
recipe_block() { # the fenced block after the marker, verbatim
    awk -v m="<!-- pi-check: $1 " 'index($0, m) == 1 {f = 1; next}
        f == 1 && /^```/ {f = 2; next} f == 2 && /^```/ {exit} f == 2 {print}' "$REPO/README.md"
}
recipe_script() { # the block as run in the chroot (see the header)
    recipe_block "$1" | sed -e 's/^sudo //' -e 's/| sudo /| /g' \
        -e "s#'edgedet\\[#'/opt/edgedet-src[#g" -e 's#install edgedet$#install /opt/edgedet-src#' \
        -e 's/^\(.*edgedet service install\)\(.*\)$/\1 --dry-run --root \/\2/' \
        -e 's/^systemctl /: skipped in a chroot: systemctl /' \
        -e 's/apt-get install /apt-get install -y --no-install-recommends /' \
        $(for p in "${!SUBSTITUTE[@]}"; do printf -- "-e s/\\<%s\\>/%s/ " "$p" "${SUBSTITUTE[$p]}"; done)
}
mapfile -t RECIPES < <(if [ -n "${EDGEDET_PI_CHECK_RECIPES:-}" ]; then
    tr ' ' '\n' <<<"$EDGEDET_PI_CHECK_RECIPES"; else recipe_names; fi)
[ ${#RECIPES[@]} -gt 0 ] || die "no <!-- pi-check: NAME venv=DIR --> marker in README.md"
packages=("${BASE_PACKAGES[@]}")
for r in "${RECIPES[@]}"; do
    [ -n "$(recipe_venv "$r")" ] || die "README.md has no recipe '$r'"
    for p in $(recipe_block "$r" | sed -n 's/.*apt-get install \(.*\)$/\1/p'); do
        packages+=("${SUBSTITUTE[$p]:-$p}")
    done
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)

# --- host tools ------------------------------------------------------------------------
if ! command -v mmdebstrap >/dev/null || [ ! -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ]; then
    say "installing mmdebstrap and qemu-user-static"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        mmdebstrap qemu-user-static binfmt-support >/dev/null
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64
fi

# --- the arm64 root (cached) ------------------------------------------------------------
mkdir -p "$CACHE" "$OUT"
stamp="bookworm arm64 ${packages[*]}"
if [ ! -f "$ROOT/.edgedet-pi-check" ] || [ "$(cat "$ROOT/.edgedet-pi-check")" != "$stamp" ]; then
    say "building the arm64 root: ${packages[*]}"
    rm -rf "$ROOT" "$ROOT.tmp"
    mmdebstrap --quiet --arch=arm64 --variant=apt --include="$(IFS=,; echo "${packages[*]}")" \
        bookworm "$ROOT.tmp" "$MIRROR"
    echo "$stamp" >"$ROOT.tmp/.edgedet-pi-check"
    mv "$ROOT.tmp" "$ROOT"
    say "root built: $(du -sxh "$ROOT" | cut -f1)"
else
    say "reusing the cached root $ROOT"
fi

# The registry is reached through this machine's CA certificates and pip configuration.
# The host's bundle already includes its local CAs (/usr/local/share/ca-certificates);
# copying it beats running update-ca-certificates under emulation (minutes).
mkdir -p "$ROOT/usr/local/share/ca-certificates" "$ROOT/etc/xdg"
cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
[ -d /etc/xdg/pip ] && rm -rf "$ROOT/etc/xdg/pip" && cp -a /etc/xdg/pip "$ROOT/etc/xdg/pip"
pass_env=()
while IFS='=' read -r name value; do
    case $value in /*) [ -e "$ROOT$value" ] || continue ;; esac # a host-only path
    pass_env+=("$name=$value")
done < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' || true)

# This checkout (tracked and new files, not .venv or .git) as the package to install.
rm -rf "$ROOT/opt/edgedet-src"
mkdir -p "$ROOT/opt/edgedet-src"
git -C "$REPO" ls-files -z --cached --others --exclude-standard |
    (cd "$REPO" && xargs -0 tar -cf - --no-recursion --ignore-failed-read) |
    tar -xf - -C "$ROOT/opt/edgedet-src"

mounts=()
cleanup() {
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
trap "exit 130" INT TERM # so that cleanup runs
mount -t proc proc "$ROOT/proc" && mounts+=("$ROOT/proc")
# qemu-user 7.2 passes the host's x86 /proc/cpuinfo through, on which XNNPACK's CPU
# detection crashes: show the board's own instead.
mount --bind "$REPO/tools/pi-check/cpuinfo-$BOARD" "$ROOT/proc/cpuinfo" &&
    mounts+=("$ROOT/proc/cpuinfo")
# XNNPACK's cpuinfo also reads /sys/devices/system/cpu/{possible,present}; without them
# it picks other int8 kernels and the outputs differ from x86-64's (measured).
mount -t sysfs -o ro sysfs "$ROOT/sys" && mounts+=("$ROOT/sys")
mkdir -p "$ROOT/dev/shm" && mount -t tmpfs shm "$ROOT/dev/shm" && mounts+=("$ROOT/dev/shm")
[ -e "$ROOT/dev/null" ] || die "$ROOT/dev has no device nodes"

in_root() { # run bash -c "$1" in the root, as root, with the emulated CPU
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 QEMU_CPU="$QEMU_CPU" "${pass_env[@]}" \
        chroot "$ROOT" /bin/bash -euo pipefail -c "$1"
}
say "in the root: $(in_root 'echo "$(uname -m), $(python3 --version)"')"

# --- x86-64 reference ---------------------------------------------------------------------
clip=$(ls "$REPO"/models/samples/vtest_clip.* | head -n1)
rm -rf "$OUT" && mkdir -p "$OUT/frames"
say "x86-64 reference: $FRAMES frames of $(basename "$clip")"
"$HOST_PY" - "$clip" "$OUT/frames" "$FRAMES" <<'EOF'
import sys
import cv2
# Lossless PNGs of the clip's first frames as decoded here: the clip's MPEG-4 Part 2 video
# decodes to other pixels on aarch64 (FFmpeg's IDCT), so only these are the same input.
cap = cv2.VideoCapture(sys.argv[1])
for i in range(int(sys.argv[3])):
    ok, frame = cap.read()
    assert ok, i
    cv2.imwrite(f"{sys.argv[2]}/frame{i:03d}.png", frame)
EOF
rm -rf "$ROOT/tmp/pi-check-frames" && cp -r "$OUT/frames" "$ROOT/tmp/pi-check-frames"
cp "$clip" "$ROOT/tmp/pi-check-clip${clip##*/vtest_clip}"
reference() { # BACKEND: the x86-64 outputs of this checkout with that interpreter
    local py=$HOST_PY
    [ "$1" = tflite_runtime ] && py=$HOST_TFLITE_PY
    [ -f "$OUT/x86_64.$1.clip.jsonl" ] && return 0
    [ -x "$py" ] || die "$py not found (the x86-64 reference for backend $1)"
    (cd "$OUT/frames" && PYTHONPATH=$REPO "$py" -m edgedet detect --json --backend "$1" ./*.png) \
        >"$OUT/x86_64.$1.detect.jsonl"
    for src in frames clip; do
        PYTHONPATH=$REPO "$py" -m edgedet run --backend "$1" --max-frames "$FRAMES" --http off \
            --source "$([ $src = frames ] && echo "$OUT/frames" || echo "$clip")" \
            --log "$OUT/x86_64.$1.$src.jsonl" --no-summary 2>/dev/null
    done
}

backend_of() { local b; b=$(recipe_attr "$1" backend); echo "${b:-litert}"; }
for r in "${RECIPES[@]}"; do reference "$(backend_of "$r")"; done # one snapshot, up front

# --- the recipes ----------------------------------------------------------------------------
failed=()
for r in "${RECIPES[@]}"; do
    venv=$(recipe_venv "$r")
    log=$OUT/$r.log
    say "recipe $r: README block as run:"
    recipe_script "$r" | sed 's/^/    /'
    start=$(date +%s)
    if ! in_root "rm -rf $venv; $(recipe_script "$r")" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        failed+=("$r: install (see $log)")
        continue
    fi
    say "recipe $r: installed in $(($(date +%s) - start)) s; $(in_root "$venv/bin/python -c \
'import numpy, cv2, sys; print(\"numpy\", numpy.__version__, \"opencv\", cv2.__version__)'")"
    check() { # NAME SCRIPT: run SCRIPT in the root, keep its output in $OUT/$r.NAME
        if ! in_root "$2" >"$OUT/$r.$1" 2>"$OUT/$r.$1.err"; then
            tail -n 20 "$OUT/$r.$1.err" >&2
            failed+=("$r: $1")
            return 1
        fi
    }
    backend=$(backend_of "$r")
    # ai-edge-litert: identical to x86-64. tflite-runtime's int8 kernels differ between
    # x86-64 and aarch64 (same input tensor, other outputs: measured), so only agreement.
    mode=()
    [ "$backend" = tflite_runtime ] && mode=(--agree)
    compare() { # REFERENCE OURS
        "$HOST_PY" "$REPO/tools/pi_check_compare.py" "${mode[@]}" "$1" "$2" |
            tee -a "$OUT/summary" || failed+=("$r: $(basename "$2") differs from x86-64")
    }
    check golden "cd /opt/edgedet-src && $venv/bin/python tools/input_tensor_hashes.py \
--backend $backend --check tests/core/input_tensor_golden.json" &&
        say "recipe $r: input tensors equal the golden hashes"
    if check detect.jsonl "cd /tmp/pi-check-frames && $venv/bin/edgedet detect --json \
--backend $backend ./*.png"; then
        compare "$OUT/x86_64.$backend.detect.jsonl" "$OUT/$r.detect.jsonl"
    fi
    if check frames.jsonl "rm -f /tmp/run.jsonl; $venv/bin/edgedet run --backend $backend \
--source /tmp/pi-check-frames --max-frames $FRAMES --http off --log /tmp/run.jsonl \
--no-summary 2>/dev/null; cat /tmp/run.jsonl"; then
        compare "$OUT/x86_64.$backend.frames.jsonl" "$OUT/$r.frames.jsonl"
    fi
    # The clip itself: reported, not required to match (its decoding differs on aarch64).
    if check clip.jsonl "rm -f /tmp/run.jsonl; $venv/bin/edgedet run --backend $backend \
--source /tmp/pi-check-clip* --max-frames $FRAMES --http off --log /tmp/run.jsonl \
--no-summary 2>/dev/null; cat /tmp/run.jsonl"; then
        "$HOST_PY" "$REPO/tools/pi_check_compare.py" "$OUT/x86_64.$backend.clip.jsonl" \
            "$OUT/$r.clip.jsonl" | head -n1 | sed 's/^/(clip: decoded differently, not checked) /' |
            tee -a "$OUT/summary" || true
    fi
    check service.out "$venv/bin/edgedet service install --dry-run --root /" &&
        say "recipe $r: service install --dry-run: $(grep -c . "$OUT/$r.service.out") lines"
    if [ "$r" = system ]; then
        # Import apt's cv2 (python3-opencv, built against apt's NumPy) by its file path.
        load_apt_cv2="python -c 'import importlib.util as u, glob, numpy
p = glob.glob(\"/usr/lib/python3/dist-packages/cv2/**/cv2*.so\", recursive=True)
p += glob.glob(\"/usr/lib/python3/dist-packages/cv2*.so\")
s = u.spec_from_file_location(\"cv2\", p[0]); m = u.module_from_spec(s); s.loader.exec_module(m)
print(\"apt cv2\", m.__version__, \"imports with numpy\", numpy.__version__)'"
        # apt's NumPy is the venv's, and an apt extension built against it imports there.
        check abi.out "$venv/bin/python -c 'import numpy; assert numpy.__file__.startswith(\"/usr/lib/python3/dist-packages/\"), numpy.__file__; print(\"numpy\", numpy.__version__, numpy.__file__)'
$venv/bin/$load_apt_cv2" &&
            say "recipe $r: $(tr '\n' ';' <"$OUT/$r.abi.out")"
        # The control: the old recipe (pip's NumPy 2 in the same kind of venv) breaks that
        # apt extension, as NumPy 2 breaks apt's simplejpeg on Raspberry Pi OS.
        in_root "rm -rf /tmp/clash; python3 -m venv --system-site-packages /tmp/clash
/tmp/clash/bin/pip install -q 'numpy>=2'; /tmp/clash/bin/$load_apt_cv2" >"$OUT/$r.clash.out" 2>&1 && rc=0 || rc=$?
        if [ "$rc" = 0 ]; then
            failed+=("$r: apt's cv2 imported next to pip's NumPy 2: the ABI check proves nothing")
        else
            say "recipe $r: control, pip NumPy 2 in the venv: $(grep -m1 -E 'Error|error' "$OUT/$r.clash.out" | cut -c1-160)"
        fi
        # A config and no camera: `auto` must not fall back to the sample clip.
        in_root "printf 'source:\n  uri: auto\n' >/tmp/auto.yaml; $venv/bin/edgedet run \
--config /tmp/auto.yaml --max-frames 1 --http off" >"$OUT/$r.auto.out" 2>&1 && rc=0 || rc=$?
        if [ "$rc" != 2 ] || ! grep -q picamera2 "$OUT/$r.auto.out"; then
            cat "$OUT/$r.auto.out" >&2
            failed+=("$r: source auto with a config (exit $rc)")
        else
            say "recipe $r: source auto with a config: $(tail -n1 "$OUT/$r.auto.out")"
        fi
    fi
done

say "done: board $BOARD (QEMU_CPU=$QEMU_CPU), root $(du -sxh "$ROOT" | cut -f1), cache $(du -sxh "$CACHE" | cut -f1)"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'pi-check FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
say "pi-check passed: ${RECIPES[*]}"
