"""The one box painter (the CLI's annotated videos and the notebooks' players) and its colours."""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

GT_COLOR = (0, 255, 0)        # RGB: ground truth green, everywhere
PRED_COLOR = (255, 0, 0)      # RGB: a single prediction red
TEXT_COLOR = (255, 255, 0)


def paint_boxes(frame: np.ndarray, boxes: Iterable[tuple[np.ndarray | None, tuple[int, int, int], int]]) -> np.ndarray:
    """A copy of an RGB uint8 frame with each ``(box, colour, thickness)`` drawn in order: the outline
    covers exactly the pixels x0 … x0+w−1, y0 … y0+h−1 (rounded). ``None`` or non-finite boxes are skipped."""
    img = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    for box, color, thick in boxes:
        if box is None:
            continue
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if b.shape != (4,) or not np.all(np.isfinite(b)):
            continue
        x0, y0 = int(round(b[0])), int(round(b[1]))
        x1, y1 = int(round(b[0] + b[2])) - 1, int(round(b[1] + b[3])) - 1
        cv2.rectangle(img, (x0, y0), (max(x0, x1), max(y0, y1)), color, int(thick), cv2.LINE_8)
    return img
