"""edgedet: object detection on edge devices, kept running there.

Importing the package is cheap: numpy only. Interpreters, OpenCV, TensorFlow, paho-mqtt
and picamera2 are imported lazily by the plugin that needs them.
"""

from edgedet.detections import Detections
from edgedet.errors import EdgedetError

__version__ = "0.1.0"

__all__ = ["Detections", "EdgedetError", "__version__"]
