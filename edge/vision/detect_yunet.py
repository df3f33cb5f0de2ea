"""YuNet detector on onnxruntime with an own numpy decoder and NMS (5 landmarks per face)."""

from __future__ import annotations

import numpy as np

from edge.vision.nms import check_bgr, nms, scale_to_max_side
from edge.vision.runtime import Session
from edge.vision.types import Face

STRIDES = (8, 16, 32)


class YuNetDetector:
    """Scales the frame to `max_side`, pads to a multiple of 32, decodes cls/obj/bbox/kps."""

    name = "yunet"

    def __init__(self, session: Session, *, max_side: int, score_threshold: float,
                 nms_iou: float, fixed_size: tuple[int, int] | None = None) -> None:
        self.session = session
        self.max_side = max_side if fixed_size is None else min(max_side, *fixed_size)
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.fixed_size = fixed_size  # (w, h) for the fixed-input model
        names = [o.name for o in session.session.get_outputs()]
        self._order = {n: i for i, n in enumerate(names)}
        self._grid_cache: dict[tuple[int, int, int], np.ndarray] = {}

    def _grid(self, rows: int, cols: int, stride: int) -> np.ndarray:
        key = (rows, cols, stride)
        if key not in self._grid_cache:
            yy, xx = np.mgrid[0:rows, 0:cols]
            self._grid_cache[key] = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)
        return self._grid_cache[key]

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        image = check_bgr(image_bgr)
        small, scale = scale_to_max_side(image, self.max_side)
        h, w = small.shape[:2]
        if self.fixed_size:
            pw, ph = self.fixed_size
        else:
            pw, ph = -(-w // 32) * 32, -(-h // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = small.transpose(2, 0, 1)
        outs = self.session.run(blob)
        boxes, scores, kps = [], [], []
        for s in STRIDES:
            cls = outs[self._order[f"cls_{s}"]][0, :, 0]
            obj = outs[self._order[f"obj_{s}"]][0, :, 0]
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            keep = score >= self.score_threshold
            if not keep.any():
                continue
            grid = self._grid(ph // s, pw // s, s)[keep]
            bb = outs[self._order[f"bbox_{s}"]][0][keep]
            kp = outs[self._order[f"kps_{s}"]][0][keep]
            cxy = (grid + bb[:, :2]) * s
            wh = np.exp(bb[:, 2:4]) * s
            boxes.append(np.concatenate([cxy - wh / 2, cxy + wh / 2], 1))
            kps.append((kp.reshape(-1, 5, 2) + grid[:, None, :]) * s)
            scores.append(score[keep])
        if not boxes:
            return []
        all_boxes = np.concatenate(boxes) / scale
        all_scores = np.concatenate(scores)
        all_kps = np.concatenate(kps) / scale
        faces = []
        for i in nms(all_boxes, all_scores, self.nms_iou):
            x1, y1, x2, y2 = (float(v) for v in all_boxes[i])
            faces.append(Face(box=(x1, y1, x2 - x1, y2 - y1), score=float(all_scores[i]),
                              landmarks=all_kps[i].astype(np.float32)))
        return faces
