"""Face rate: the fraction of images in which a face detector finds a face.

SWD compares image statistics; the face rate answers whether a person would see a face. FID
needs Inception weights that cannot be downloaded here; a detector whose model ships inside an
installable package can run anywhere. The detector is OpenCV's frontal-face Haar cascade
(Viola-Jones), the XML file inside `opencv-python-headless` 4.x (`pip install 'facegan[metrics]'`;
OpenCV 5.0's wheel no longer ships the cascade files). NumPy + OpenCV only: no TensorFlow, so
the JAX training path can log it too.

Why this detector: measured on the embedded LFW set at 32 px, upscaled to 64 px (docs/training.md,
Evaluate), with 100 real faces, 100 LFW non-faces, 200 noise images and 500 images from
generators after 0, 5, 20, 60 and 200 epochs of the quick start:

| detector | real faces | non-faces, noise | 0 / 5 / 20 / 60 / 200 epochs | ms per image |
|---|---|---|---|---|
| Haar frontalface_default (this one) | 0.89 | 0.00, 0.00 | 0.00 / 0.01 / 0.15 / 0.19 / 0.40 | 1.1 |
| Haar frontalface_alt2 | 0.93 | 0.00, 0.00 | 0.00 / 0.01 / 0.06 / 0.09 / 0.25 | 1.0 |
| `mtcnn` 1.0 (TensorFlow), P >= 0.9 | 0.96 | 0.00, 0.00 | 0.00 / 0.00 / 0.00 / 0.00 / 0.03 | 19 |

All three reject noise and untrained generators; MTCNN also rejects nearly every face a 32 px
DCGAN makes, so it cannot rank runs, and it is about 20x slower. `facenet-pytorch` 2.6 requires
torch < 2.3 and NumPy < 2, which conflict with facegan's pins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from facegan import extras
from facegan.errors import UsageError
from facegan.images import enlarge, grid

CASCADE = "haarcascade_frontalface_default.xml"
DETECTOR = f"OpenCV Haar cascade {CASCADE}"
INSTALL = extras.install("metrics")
MIN_SIDE = 64  # smaller images are upscaled (bicubic) to this: the cascade's window is 24 px, 32 px faces are too small
MIN_NEIGHBORS = 3  # the confidence threshold: overlapping raw detections a face needs (OpenCV's own default)
SCALE_FACTOR = 1.05  # window growth between scales: 5 % steps find faces of every size in a small image
MIN_FACE = 1 / 3  # a face must span at least a third of the image's side (the data sets are face crops)


class DetectorMissing(UsageError):
    """OpenCV (the metrics extra) is not installed."""


def available() -> bool:
    try:
        _cascade_path()
    except DetectorMissing:
        return False
    return True


def _cascade_path() -> str:
    try:
        import cv2
    except ImportError:
        raise DetectorMissing(f"face rate needs OpenCV's face detector: {INSTALL}") from None
    path = getattr(getattr(cv2, "data", None), "haarcascades", "") + CASCADE
    if not os.path.isfile(path):
        raise DetectorMissing(f"OpenCV {cv2.__version__} ships no {CASCADE} (OpenCV 5 dropped it): {INSTALL}")
    return path


@dataclass(frozen=True)
class FaceRate:
    rate: float  # fraction of images with at least one detected face
    faces: int  # images with a face
    images: int  # images looked at
    boxes: list[np.ndarray]  # per image, detections [K, 4] (x, y, w, h) in the image's own pixels

    def figures(self) -> dict:
        return {"rate": self.rate, "faces": self.faces, "images": self.images}


class FaceDetector:
    """OpenCV's frontal-face cascade with facegan's fixed settings; deterministic for the same images."""

    def __init__(self, min_neighbors: int = MIN_NEIGHBORS):
        if min_neighbors < 1:
            raise UsageError(f"the face detector's threshold (min neighbors) must be >= 1, got {min_neighbors}")
        path = _cascade_path()  # DetectorMissing, with the install line, before anything else
        import cv2

        self.cv2 = cv2
        self.min_neighbors = min_neighbors
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise DetectorMissing(f"OpenCV could not read {CASCADE}: reinstall with {INSTALL}")

    def settings(self) -> dict:
        return {
            "detector": DETECTOR,
            "min_neighbors": self.min_neighbors,
            "min_side_px": MIN_SIDE,
            "scale_factor": SCALE_FACTOR,
            "min_face": round(MIN_FACE, 4),
        }

    def boxes(self, image: np.ndarray) -> np.ndarray:
        """Faces in one uint8 HxWx3 (or HxW) image: [K, 4] (x, y, w, h) in that image's pixels."""
        cv2 = self.cv2
        gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        scale = max(1.0, MIN_SIDE / min(h, w))
        if scale > 1.0:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        side = int(min(gray.shape) * MIN_FACE)
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=SCALE_FACTOR, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        if len(found) == 0:
            return np.zeros((0, 4), np.int32)
        return np.round(np.asarray(found, np.float64) / scale).astype(np.int32)

    def rate(self, images: np.ndarray) -> FaceRate:
        """The face rate of uint8 NHWC images."""
        boxes = [self.boxes(image) for image in images]
        faces = sum(1 for b in boxes if len(b))
        return FaceRate(rate=faces / max(1, len(images)), faces=faces, images=len(images), boxes=boxes)


def outline(image: np.ndarray, boxes: np.ndarray, color=(0, 255, 0)) -> np.ndarray:
    """A copy of an HxWx3 uint8 image with each box's 1-px outline drawn in `color`."""
    out = image.copy()
    h, w = out.shape[:2]
    for x, y, bw, bh in boxes:
        x0 = min(max(int(x), 0), w - 1)
        y0 = min(max(int(y), 0), h - 1)
        x1 = min(max(int(x + bw - 1), 0), w - 1)
        y1 = min(max(int(y + bh - 1), 0), h - 1)
        out[y0, x0 : x1 + 1] = color
        out[y1, x0 : x1 + 1] = color
        out[y0 : y1 + 1, x0] = color
        out[y0 : y1 + 1, x1] = color
    return out


def sheet(images: np.ndarray, result: FaceRate, cols: int = 8, rows: int = 4) -> np.ndarray:
    """faces.png: above the white line up to rows x cols images with a detected face (green boxes),
    below it as many without. Tiles are enlarged to at least MIN_SIDE px, as the detector saw them."""
    factor = max(1, MIN_SIDE // images.shape[1])
    big = enlarge(images, factor)
    with_face = [outline(img, b * factor) for img, b in zip(big, result.boxes) if len(b)][: rows * cols]
    without = [img for img, b in zip(big, result.boxes) if not len(b)][: rows * cols]
    halves = []
    for tiles in (with_face, without):
        stack = np.stack(tiles) if tiles else np.zeros((0, *big.shape[1:]), np.uint8)
        halves.append(grid(stack, max(1, int(np.ceil(len(stack) / cols))), cols, margin=4))
    line = np.full((4, halves[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([halves[0], line, halves[1]])
