"""5-point similarity alignment onto the standard ArcFace 112x112 template."""

from __future__ import annotations

import cv2
import numpy as np

from model.types import FloatArray, ImageArray

# insightface's template for 112x112 crops: eyes, nose tip, mouth corners (viewer's left first).
ARCFACE_TEMPLATE: FloatArray = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ARCFACE_SIZE = 112


def similarity_transform(src: FloatArray, dst: FloatArray) -> FloatArray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst.

    Umeyama (1991), closed form; returns the 2x3 matrix for cv2.warpAffine.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # reflections are not similarities
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix.astype(np.float32)


def align_face(image: ImageArray, landmarks: FloatArray, size: int = ARCFACE_SIZE) -> ImageArray:
    """Warp the face whose 5 landmarks are given onto the ArcFace template at `size` px."""
    template = ARCFACE_TEMPLATE * (size / ARCFACE_SIZE)
    matrix = similarity_transform(landmarks, template)
    chip = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(chip)


def centre_crop_landmarks(height: int, width: int) -> FloatArray:
    """Landmarks that place the template on the central square of an image.

    Used when no face is detected and the policy allows a centre crop (for instance on
    pre-cropped face thumbnails): the central square is assumed to be a loosely cropped face.
    """
    side = min(height, width)
    x0, y0 = (width - side) / 2.0, (height - side) / 2.0
    # A loose face crop keeps about 1.3x the template area; place the template inside it.
    inner = side / 1.3
    offset = (side - inner) / 2.0
    pts = ARCFACE_TEMPLATE / ARCFACE_SIZE * inner
    return (pts + np.array([x0 + offset, y0 + offset], dtype=np.float32)).astype(np.float32)
