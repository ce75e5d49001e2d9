"""Face detectors behind one protocol, and the choice of a photo's primary face."""

from model.detection.base import Detector, DetectorOptions, detect_faces
from model.detection.factory import DETECTORS, create_detector
from model.detection.selection import primary_face

__all__ = ["DETECTORS", "Detector", "DetectorOptions", "create_detector", "detect_faces", "primary_face"]
