"""Default detector `ultraface_landmark68`: fr_detect boxes, then fr_landmark's 68 points -> 5.

fr_detect behaves like UltraFace RFB-320 (fixed 320x240 input, decoded corner-form boxes); the
frame is letterboxed into it so faces keep their shape. Each box is squared to its height (as the
package does) and fed to fr_landmark (64x64 grey); its 68 points give the 5 alignment points.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.vision.nms import check_bgr, nms, scale_to_max_side
from edge.vision.runtime import Session
from edge.vision.types import Face

IN_W, IN_H = 320, 240
LM_SIZE = 64


def five_from_68(pts: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG points -> (5, 2) in LANDMARK_NAMES order (image-left eye first)."""
    return np.stack([
        pts[[37, 38, 40, 41]].mean(0),   # eye on the image's left
        pts[[43, 44, 46, 47]].mean(0),   # eye on the image's right
        pts[30],                         # nose tip
        pts[[48, 60]].mean(0),           # mouth corner on the image's left
        pts[[54, 64]].mean(0),           # mouth corner on the image's right
    ]).astype(np.float32)


class UltraFaceLandmarkDetector:
    name = "ultraface_landmark68"

    def __init__(self, detect: Session, landmark: Session, *, max_side: int,
                 score_threshold: float, nms_iou: float) -> None:
        self.detect_session = detect
        self.landmark_session = landmark
        self.max_side = max_side
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        outs = [o.name for o in detect.session.get_outputs()]
        self._scores_idx, self._boxes_idx = outs.index("scores"), outs.index("boxes")

    def _boxes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small, pre = scale_to_max_side(image, self.max_side)
        h, w = small.shape[:2]
        fit = min(IN_W / w, IN_H / h)
        rw, rh = max(1, round(w * fit)), max(1, round(h * fit))
        canvas = np.full((IN_H, IN_W, 3), 127, np.uint8)
        interp = cv2.INTER_AREA if fit < 1 else cv2.INTER_LINEAR
        canvas[:rh, :rw] = cv2.resize(small, (rw, rh), interpolation=interp)
        blob = (canvas[:, :, ::-1].astype(np.float32) - 127.0) / 128.0
        outs = self.detect_session.run(blob.transpose(2, 0, 1)[None])
        scores = outs[self._scores_idx][0, :, 1]
        keep = scores >= self.score_threshold
        boxes = outs[self._boxes_idx][0][keep] * np.array([IN_W, IN_H, IN_W, IN_H], np.float32)
        boxes /= fit * pre
        scores = scores[keep]
        idx = nms(boxes, scores, self.nms_iou)
        return boxes[idx], scores[idx]

    def _landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        ih, iw = image.shape[:2]
        x1, y1, x2, y2 = box
        side = y2 - y1
        cx = (x1 + x2) / 2
        cy = (y1 + y2) / 2
        sx1, sy1 = max(0.0, cx - side / 2), max(0.0, cy - side / 2)
        sx2, sy2 = min(iw - 1.0, cx + side / 2), min(ih - 1.0, cy + side / 2)
        ix1, iy1 = int(sx1), int(sy1)
        ix2, iy2 = max(ix1 + 2, round(sx2)), max(iy1 + 2, round(sy2))
        crop = image[iy1:iy2, ix1:ix2]
        bw, bh = crop.shape[1], crop.shape[0]
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        grey = cv2.resize(grey, (LM_SIZE, LM_SIZE), interpolation=cv2.INTER_AREA
                          if bw > LM_SIZE else cv2.INTER_LINEAR)
        out = self.landmark_session.run((grey.astype(np.float32) / 256.0)[None, None])[0]
        pts = out.reshape(68, 2) * np.array([bw, bh], np.float32) + np.array([ix1, iy1],
                                                                             np.float32)
        return five_from_68(pts)

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        image = check_bgr(image_bgr)
        boxes, scores = self._boxes(image)
        ih, iw = image.shape[:2]
        faces = []
        for box, score in zip(boxes, scores, strict=True):
            x1, y1 = max(0.0, float(box[0])), max(0.0, float(box[1]))
            x2, y2 = min(float(iw), float(box[2])), min(float(ih), float(box[3]))
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            lm = self._landmarks(image, np.array([x1, y1, x2, y2], np.float32))
            faces.append(Face(box=(x1, y1, x2 - x1, y2 - y1), score=float(score),
                              landmarks=lm))
        return faces
