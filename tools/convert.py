#!/usr/bin/env python3
"""Script form of `edgedet convert` (same flags), for a checkout without the entry point.

    python tools/convert.py SRC --out MODEL.tflite --calib VIDEO|IMAGES_DIR [options]

Run `python tools/convert.py --help` for the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgedet.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
