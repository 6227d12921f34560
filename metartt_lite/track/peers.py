"""Peer trackers from OpenCV (CSRT, KCF, MIL and NanoTrack) behind the package's tracker interface.

Every tracker in the package, ours and these, follows one small protocol::

    class Tracker(Protocol):
        name: str
        def init(self, frame: np.ndarray, box: np.ndarray) -> None: ...
        def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]: ...   # xywh 0-based, score

Frames are uint8 RGB (H, W, 3) and boxes float ``[x, y, w, h]`` in 0-based pixels, as everywhere in
``metartt_lite``. The wrapper does the conversions OpenCV needs:

* **Colour**: OpenCV trackers expect BGR, so each frame is converted RGB -> BGR before it is handed over.
* **Boxes**: the OpenCV (non-legacy) trackers take an integer ``cv::Rect``. The initial box is first
  clipped into the frame (:func:`metartt_lite.core.boxes.clip_boxes`), then its *corners* are rounded to the
  nearest pixel (``x0 = round(x)``, ``x1 = round(x + w)``, width ``x1 - x0``, at least 1 px), so the
  rounded box covers the same region up to half a pixel at each edge. OpenCV's output is returned as
  float and clipped into the frame.
* **KCF warm-up**: OpenCV's KCF does not learn from the frame given to ``init``; it trains on the
  first ``update`` frame at the initial box, so as shipped it lags the target by one frame for the
  whole sequence (on a target moving 4 px/frame: mean IoU 0.68 against 1.0 with the fix). The
  wrapper therefore calls ``update`` once on the initial frame inside ``init`` (its output is
  discarded), which trains KCF where the original algorithm does. This time counts as init time.
* **Failure**: when OpenCV reports ``ok == False`` (target not located) the wrapper keeps the previous
  box and returns score ``0.0``; a successful update returns score ``1.0``. OpenCV gives no
  confidence, so the score is only this flag.

* **NanoTrack** (``nanotrack``): ``cv2.TrackerNano`` on the vendored v2 ONNX pair
  (``weights/nanotrack/``, Apache-2.0, see its NOTICE); its score is OpenCV's ``getTrackingScore()``
  (the window-blended, penalised target probability of the chosen point, 0–1) and ``ok`` is always true.

The contrib trackers (CSRT, KCF) live only in ``opencv-contrib-python(-headless)``. When
``opencv-python`` or ``opencv-python-headless`` is installed beside it, whichever was installed last
owns the shared ``cv2`` folder and may hide them; the error raised then says so.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from ..core.boxes import clip_boxes, validate_box
from ..core.checkpoint import WEIGHTS_DIR
from ..core.utils import MetaRTTError

__all__ = ["Tracker", "OpenCVTracker", "PEERS", "make_peer", "opencv_factory"]


@runtime_checkable
class Tracker(Protocol):
    """The interface shared by MetaRTT and the OpenCV peers (see the module docstring).

    ``update`` returns ``(box, score)`` and sets ``success`` (bool): the target was found. Our trackers'
    score is the target logit and ``success`` is ``score > success_threshold`` (0, or the pruning shift
    for the pruned trackers); OpenCV's score is 1.0 (located) or 0.0 (not located; previous box kept)."""

    name: str

    def init(self, frame: np.ndarray, box: np.ndarray) -> None: ...

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]: ...


_FACTORIES = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create", "mil": "TrackerMIL_create",
              "nanotrack": "TrackerNano_create"}
NANOTRACK_ONNX = WEIGHTS_DIR / "nanotrack"

# NanoTrack's tracking score (window-blended probability) above which a frame counts as a success. Measured on
# make_target_leaves (translation / occlusion / distractor, seeds 0-1): 0.987-0.994 while the target is there,
# 0.90-0.95 after it left a plain scene, but 0.98-0.99 when a look-alike stays (NanoTrack then follows it):
# its score cannot tell a look-alike from the target; metartt-nano's head can (docs/results/val_nano).
NANO_SUCCESS_THRESHOLD = 0.98

# OpenCV's MIL never returns from init on boxes below this area (4x4 px hangs, 5x5 works; measured)
MIL_MIN_AREA = 20

# trackers that only learn on their first update() call (see "KCF warm-up" above)
_TRAIN_ON_FIRST_UPDATE = frozenset({"kcf"})

_CONTRIB_HINT = (
    "opencv-contrib-python-headless must be the only OpenCV package installed: opencv-python or "
    "opencv-python-headless installed beside it shadow the contrib build. Fix with\n"
    "  pip uninstall -y opencv-python opencv-python-headless opencv-contrib-python "
    "opencv-contrib-python-headless\n"
    "  pip install opencv-contrib-python-headless")


def opencv_factory(kind: str) -> Callable[[], Any]:
    """The OpenCV constructor for ``kind`` ('csrt', 'kcf', 'mil' or 'nanotrack').

    Prefers the current API (``cv2.TrackerXXX_create``, OpenCV >= 4.5.1) and falls back to
    ``cv2.legacy``. Raises :class:`MetaRTTError` when neither provides it (no contrib build).
    """
    kind = kind.lower()
    if kind not in _FACTORIES:
        raise MetaRTTError(f"unknown OpenCV tracker {kind!r}; choose one of {sorted(_FACTORIES)}")
    try:
        import cv2
    except ImportError as e:
        raise MetaRTTError(f"OpenCV is not importable ({e}); {_CONTRIB_HINT}") from None
    attr = _FACTORIES[kind]
    if kind == "nanotrack":
        return _nano_factory(cv2)
    for mod in (cv2, getattr(cv2, "legacy", None)):
        if mod is not None and hasattr(mod, attr):
            return getattr(mod, attr)
    raise MetaRTTError(
        f"this OpenCV build ({getattr(cv2, '__version__', '?')} at {getattr(cv2, '__file__', '?')}) "
        f"has no {attr} (neither cv2.{attr} nor cv2.legacy.{attr}); {_CONTRIB_HINT}")


def _nano_factory(cv2: Any) -> Callable[[], Any]:
    """``cv2.TrackerNano`` on the vendored v2 ONNX pair (read once per tracker)."""
    if not hasattr(cv2, "TrackerNano_create"):
        raise MetaRTTError(f"this OpenCV build ({getattr(cv2, '__version__', '?')}) has no TrackerNano (OpenCV >= 4.7 "
                           f"with the dnn module is needed)")
    files = [NANOTRACK_ONNX / "nanotrack_backbonev2.onnx", NANOTRACK_ONNX / "nanotrack_headv2.onnx"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MetaRTTError(f"NanoTrack's ONNX files are missing from the package: {', '.join(missing)}")

    def make() -> Any:
        params = cv2.TrackerNano_Params()
        params.backbone, params.neckhead = str(files[0]), str(files[1])
        log = getattr(getattr(cv2, "utils", None), "logging", None)
        if log is None:
            return cv2.TrackerNano_create(params)
        # OpenCV 5's DNN prints "Targets are not supported by the new graph engine" for the CPU target it is
        # given by default: a notice about its internals, not about this run; silenced while it is built
        level = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_ERROR)
        try:
            return cv2.TrackerNano_create(params)
        finally:
            log.setLogLevel(level)
    return make


def _to_bgr(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
        raise MetaRTTError(f"expected a uint8 RGB frame of shape (H, W, 3), got {f.dtype} {f.shape}")
    return np.ascontiguousarray(f[..., ::-1])


def _cv_reason(e: BaseException) -> str:
    """The gist of an OpenCV exception on one line: the text after OpenCV's "file:line: error: " prefix
    (e.g. "(-215:Assertion failed) top >= 0 && ... in function 'copyMakeBorder'"), squeezed to one line."""
    text = " ".join(str(e).split())
    head, sep, tail = text.partition(": error: ")
    text = tail if sep else text
    return text[:300] + ("..." if len(text) > 300 else "")


def _round_box(box: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Clip a float xywh box into the frame and round its corners to integer pixels (width, height >= 1)."""
    W, H = frame_size
    b = clip_boxes(np.asarray(box, dtype=np.float64), frame_size, min_size=1.0)
    x0, y0 = int(round(b[0])), int(round(b[1]))
    x1, y1 = int(round(b[0] + b[2])), int(round(b[1] + b[3]))
    x0, y0 = min(max(x0, 0), W - 1), min(max(y0, 0), H - 1)
    x1, y1 = min(max(x1, x0 + 1), W), min(max(y1, y0 + 1), H)
    return x0, y0, x1 - x0, y1 - y0


class OpenCVTracker:
    """An OpenCV tracker ('csrt', 'kcf' or 'mil') with the package's RGB / float-xywh interface.

    ``init`` builds a fresh OpenCV tracker each time, so one object can run many sequences.
    ``update`` returns ``(box, score)``: score 1.0 when OpenCV located the target, else 0.0 together
    with the previous box unchanged. Returned boxes are clipped into the frame. OpenCV's trackers use
    no random numbers, so ``deterministic`` is true: the harness runs them once, whatever the seeds.
    """

    deterministic = True
    success_threshold = 0.0  # success: score > 0, i.e. OpenCV located the target

    def __init__(self, kind: str):
        self.kind = kind.lower()
        self.name = self.kind
        if self.kind == "nanotrack":
            self.success_threshold = NANO_SUCCESS_THRESHOLD
        self._factory = opencv_factory(self.kind)  # fails early, with the install hint
        self._tracker: Any = None
        self._box: np.ndarray | None = None
        self._frame_size: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"OpenCVTracker({self.kind!r})"

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        bgr = _to_bgr(frame)
        H, W = bgr.shape[:2]
        b = validate_box(box, (W, H), what="initial box")
        self._frame_size = (W, H)
        rect = _round_box(b, self._frame_size)
        if self.kind == "mil" and (min(rect[2:]) < 2 or rect[2] * rect[3] < MIL_MIN_AREA):
            # OpenCV's MIL loops forever sampling positives inside a box this small (4x4, 1x40 px, ...)
            raise MetaRTTError(f"OpenCV mil cannot track box {b.tolist()} (as pixels {list(rect)}): it needs at "
                               f"least 2 px a side and {MIL_MIN_AREA} px² (smaller boxes make it hang)")
        self._tracker = self._factory()
        try:
            ok = self._tracker.init(bgr, rect)
            if self.kind in _TRAIN_ON_FIRST_UPDATE and ok is not False:
                self._tracker.update(bgr)
        except Exception as e:  # cv2.error: OpenCV's multi-line assertion text, e.g. copyMakeBorder
            raise MetaRTTError(f"OpenCV {self.kind} cannot initialise on box {b.tolist()} (as pixels "
                               f"{list(rect)} in the {W}x{H} frame): {_cv_reason(e)}") from None
        if ok is False:  # legacy API returns a flag; the current one returns None
            raise MetaRTTError(f"OpenCV {self.kind} could not initialise on box {b.tolist()}")
        self._box = clip_boxes(b, self._frame_size)
        self.success: bool | None = None  # set by every update(): OpenCV located the target

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        if self._tracker is None or self._box is None:
            raise MetaRTTError(f"{self.name}: update() called before init()")
        bgr = _to_bgr(frame)
        H, W = bgr.shape[:2]
        if (W, H) != self._frame_size:
            raise MetaRTTError(f"{self.name}: frame size changed from {self._frame_size} to {(W, H)}")
        ok, rect = self._tracker.update(bgr)
        if self.kind == "nanotrack":  # OpenCV always reports ok; its confidence is the tracking score
            r = np.asarray(rect, dtype=np.float64).reshape(-1)
            self._box = clip_boxes(r, self._frame_size)
            score = float(self._tracker.getTrackingScore())
            self.success = score > self.success_threshold
            return self._box.copy(), score
        r = np.asarray(rect, dtype=np.float64).reshape(-1) if ok else None
        self.success = bool(ok) and r.shape == (4,) and bool(np.all(np.isfinite(r)))
        if not self.success:
            return self._box.copy(), 0.0
        self._box = clip_boxes(r, self._frame_size)
        return self._box.copy(), 1.0


PEERS: dict[str, Callable[[], OpenCVTracker]] = {
    kind: functools.partial(OpenCVTracker, kind) for kind in ("csrt", "kcf", "mil", "nanotrack")
}


def make_peer(name: str) -> OpenCVTracker:
    """A new peer tracker by name ('csrt', 'kcf', 'mil', 'nanotrack'; case-insensitive)."""
    key = str(name).lower()
    if key not in PEERS:
        raise MetaRTTError(f"unknown peer tracker {name!r}; choose one of {sorted(PEERS)}")
    return PEERS[key]()
