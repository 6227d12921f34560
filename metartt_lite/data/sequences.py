"""Reading tracking sequences: OTB folders, GOT-10k folders, video files, and the shared data root.

Box convention: everything returned here is ``[x, y, w, h]`` in **0-based** pixels. OTB and GOT-10k
ground-truth files are 1-based (the top-left pixel is (1, 1)); :func:`read_otb_groundtruth` subtracts 1
from x and y exactly once and :func:`write_otb_groundtruth` adds it back. Frames are RGB uint8
``(H, W, 3)``; grayscale, RGBA and 16-bit input is converted once, in :func:`read_frame`.
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence as _Seq

import cv2
import numpy as np

from ..core.boxes import validate_box
from ..core.utils import MetaRTTError, atomic_write

__all__ = ["IMAGE_EXTS", "OTB_GT_NAMES", "Sequence", "SequenceView", "VIDEO_EXTS", "as_rgb", "count_video_frames",
           "data_root", "list_sequences", "load_got10k_sequence", "load_image_folder", "load_otb_sequence",
           "load_sequence", "load_split", "load_video", "looks_like_otb", "prefetch", "read_frame", "read_splits", "read_otb_groundtruth",
           "write_otb_groundtruth"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv")
OTB_GT_NAMES = ("groundtruth_rect.txt", "groundtruth.txt")
_SEP = re.compile(r"[,\s;]+")


# --------------------------------------------------------------------------- ground-truth files

def read_otb_groundtruth(path: str | os.PathLike) -> np.ndarray:
    """Read an OTB-style ``x,y,w,h`` file (1-based) into an (N, 4) float64 array of **0-based** boxes.

    Separators may be commas, tabs, spaces or semicolons, mixed and trailing; trailing blank lines are
    dropped. A row with NaN/inf, fewer than 4 values or blank (inside the file) becomes a NaN row; one
    warning names the file and the number of such rows. A row with more than 4 values or a
    non-numeric token raises :class:`MetaRTTError`. 1 is subtracted from x and y (only here).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MetaRTTError(f"ground-truth file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MetaRTTError(f"cannot read ground-truth file {path}: {e}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = np.full((len(lines), 4), np.nan, dtype=np.float64)
    n_bad = 0
    for i, line in enumerate(lines):
        parts = [p for p in _SEP.split(line.strip()) if p]
        if len(parts) > 4:
            raise MetaRTTError(f"line {i + 1} of {path} has {len(parts)} values, expected 4 (x,y,w,h)")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise MetaRTTError(f"line {i + 1} of {path} is not numbers x,y,w,h: {line.strip()!r}") from None
        if len(vals) < 4 or not np.all(np.isfinite(vals)):
            n_bad += 1
            continue
        rows[i] = vals
    if n_bad:
        warnings.warn(f"{path}: {n_bad} of {len(lines)} ground-truth rows are missing or NaN "
                      f"(kept as NaN rows)", stacklevel=2)
    rows[:, :2] -= 1.0
    return rows


def _fmt(v: float) -> str:
    return "NaN" if not np.isfinite(v) else f"{v:.10g}"


def write_otb_groundtruth(path: str | os.PathLike, boxes: np.ndarray) -> Path:
    """Write 0-based (N, 4) boxes as an OTB ``groundtruth_rect.txt`` (1-based, comma separated).

    NaN rows are written as ``NaN,NaN,NaN,NaN`` (which :func:`read_otb_groundtruth` reads back).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    b[:, :2] += 1.0
    text = "".join(",".join(_fmt(v) for v in (r if np.all(np.isfinite(r)) else [np.nan] * 4)) + "\n"
                   for r in b)

    def _w(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    return atomic_write(path, _w)


# --------------------------------------------------------------------------- frames

def as_rgb(img: np.ndarray, what: str = "frame", bgr: bool = False, allow_float: bool = True,
           min_side: int = 1) -> np.ndarray:
    """The one image converter: gray (H, W) / (H, W, 1), RGB and RGBA (or, with ``bgr``, OpenCV's BGR and
    BGRA) → RGB uint8 (H, W, 3), contiguous. uint16 is scaled to 8 bits; float in [0, 1] is scaled by
    255, other dtypes are clipped to [0, 255] (``allow_float=False``: anything but uint8/uint16 is an
    error). A shape that is no image, or a side under ``min_side``, raises MetaRTTError naming ``what``."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < min_side or a.shape[1] < min_side:
        raise MetaRTTError(f"{what} of shape {a.shape} is not an image (H, W), (H, W, 3) or (H, W, 4)")
    if a.dtype == np.uint16:
        a = (a // 257).astype(np.uint8)
    elif a.dtype != np.uint8:
        if not allow_float:
            raise MetaRTTError(f"{what} must be a uint8 image, got dtype {a.dtype}")
        if np.issubdtype(a.dtype, np.floating) and a.max(initial=0) <= 1.0:
            a = a * 255.0
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    if bgr:
        a = a[:, :, ::-1]
    return np.ascontiguousarray(a)


def read_frame(path: str | os.PathLike, what: str | None = None) -> np.ndarray:
    """Read one image file as RGB uint8 (H, W, 3); raise MetaRTTError if missing or undecodable."""
    path = Path(path)
    what = what or f"image {path}"
    if not path.is_file():
        raise MetaRTTError(f"{what} is missing")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise MetaRTTError(f"{what} cannot be decoded")
    try:
        return as_rgb(img, what="image", bgr=True)
    except MetaRTTError as e:
        raise MetaRTTError(f"{what} cannot be decoded: {e}") from None


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by file name (hidden files skipped)."""
    return sorted((p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".") and p.is_file()),
                  key=lambda p: p.name)


# --------------------------------------------------------------------------- Sequence

@dataclass(eq=False)
class Sequence:
    """A tracking sequence: frames (image files or one video) plus (N, 4) 0-based ground truth.

    ``groundtruth`` may contain NaN rows (unknown / absent target). ``len(seq)`` is the frame count.
    """
    name: str
    frame_paths: list[Path] | None
    groundtruth: np.ndarray
    video_path: Path | None = None
    _size: tuple[int, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        gt = np.asarray(self.groundtruth, dtype=np.float64)
        if gt.ndim != 2 or gt.shape[1] != 4:
            raise MetaRTTError(f"ground truth of {self.name} must have shape (N, 4), got {gt.shape}")
        self.groundtruth = gt
        if self.frame_paths is None and self.video_path is None:
            raise MetaRTTError(f"sequence {self.name} has neither frame files nor a video")
        if self.frame_paths is not None:
            self.frame_paths = [Path(p) for p in self.frame_paths]
            if len(self.frame_paths) != len(gt):
                raise MetaRTTError(f"sequence {self.name} has {len(self.frame_paths)} frames but "
                                   f"{len(gt)} ground-truth rows")
        if self.video_path is not None:
            self.video_path = Path(self.video_path)

    def __len__(self) -> int:
        return len(self.groundtruth)

    def __repr__(self) -> str:
        src = self.video_path if self.frame_paths is None else (
            self.frame_paths[0].parent if self.frame_paths else None)
        return f"Sequence(name={self.name!r}, n_frames={len(self)}, source={str(src)!r})"

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range: {self.name} has {n} frames")
        return i % n

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (0-based) as RGB uint8 (H, W, 3). Video frames are read by seeking (slow)."""
        i = self._index(i)
        if self.frame_paths is not None:
            p = self.frame_paths[i]
            return read_frame(p, what=f"frame {i} of {self.name} ({p})")
        cap = _open_video(self.video_path)
        try:
            if i:
                cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, img = cap.read()
        finally:
            cap.release()
        if not ok or img is None:
            raise MetaRTTError(f"frame {i} of {self.name} ({self.video_path}) cannot be decoded")
        return as_rgb(img, what=f"frame {i} of {self.name}", bgr=True)

    def frames(self) -> Iterator[np.ndarray]:
        """Iterate over all frames in order (videos are read sequentially, not by seeking)."""
        if self.frame_paths is not None:
            for i in range(len(self)):
                yield self.frame(i)
            return
        cap = _open_video(self.video_path)
        try:
            for i in range(len(self)):
                ok, img = cap.read()
                if not ok or img is None:
                    raise MetaRTTError(f"frame {i} of {self.name} ({self.video_path}) cannot be decoded "
                                       f"(video ended after {i} of {len(self)} frames)")
                yield as_rgb(img, what=f"frame {i} of {self.name}", bgr=True)
        finally:
            cap.release()

    @property
    def frame_size(self) -> tuple[int, int]:
        """(W, H) of frame 0."""
        if self._size is None:
            h, w = self.frame(0).shape[:2]
            self._size = (int(w), int(h))
        return self._size

    @property
    def init_box(self) -> np.ndarray:
        """The first ground-truth box (0-based xywh), validated; MetaRTTError if NaN or empty."""
        if len(self) == 0:
            raise MetaRTTError(f"sequence {self.name} has no frames")
        return validate_box(self.groundtruth[0], self.frame_size,
                            what=f"first ground-truth box of {self.name}")


# --------------------------------------------------------------------------- loaders

def _find_gt(folder: Path, names: _Seq[str] = OTB_GT_NAMES) -> Path | None:
    for n in names:
        if (folder / n).is_file():
            return folder / n
    return None


def load_otb_sequence(folder: str | os.PathLike, name: str | None = None,
                      allow_short_gt: bool = False) -> Sequence:
    """Load an OTB folder: ``folder/img/*.jpg|png`` (sorted by file name) + ``groundtruth_rect.txt``.

    ``groundtruth.txt`` is accepted too. Ground-truth and frame counts must match; with
    ``allow_short_gt`` a shorter ground truth truncates the frames (with a warning).
    """
    folder = Path(folder)
    name = name or folder.name
    img_dir = folder / "img"
    if not img_dir.is_dir():
        raise MetaRTTError(f"{folder} is not an OTB sequence folder: no img/ subfolder")
    frames = _image_files(img_dir)
    if not frames:
        raise MetaRTTError(f"{img_dir} holds no .jpg/.png frames")
    gt_path = _find_gt(folder)
    if gt_path is None:
        raise MetaRTTError(f"{folder} has no groundtruth_rect.txt")
    gt = read_otb_groundtruth(gt_path)
    if len(gt) > len(frames):
        raise MetaRTTError(f"{name}: {gt_path.name} has {len(gt)} rows but img/ has only "
                           f"{len(frames)} frames")
    if len(gt) < len(frames):
        if not allow_short_gt:
            raise MetaRTTError(f"{name}: {gt_path.name} has {len(gt)} rows but img/ has "
                               f"{len(frames)} frames (--allow-short-gt, or allow_short_gt=True in Python, "
                               f"drops the extra frames)")
        if len(gt) == 0:
            raise MetaRTTError(f"{name}: {gt_path} is empty")
        warnings.warn(f"{name}: using the first {len(gt)} of {len(frames)} frames "
                      f"({gt_path.name} is shorter)", stacklevel=2)
        frames = frames[:len(gt)]
    return Sequence(name=name, frame_paths=frames, groundtruth=gt)


def load_got10k_sequence(folder: str | os.PathLike, name: str | None = None) -> Sequence:
    """Load a GOT-10k folder: ``00000001.jpg ...`` + ``groundtruth.txt`` (+ optional ``absence.label``).

    GOT-10k boxes are ``left,top,width,height`` with **1-based** coordinates like OTB (stated by the
    dataset's authors, got-10k/toolkit issue #6), so they go through :func:`read_otb_groundtruth`
    (minus 1). Frames marked absent in ``absence.label`` and boxes with non-positive size (GOT-10k
    writes e.g. -1,-1,-1,-1 for an absent target) become NaN rows. A test-split folder whose
    ground truth holds only the first box gets NaN rows for the other frames.
    """
    folder = Path(folder)
    name = name or folder.name
    if not folder.is_dir():
        raise MetaRTTError(f"GOT-10k sequence folder {folder} does not exist")
    frames = _image_files(folder)
    if not frames:
        raise MetaRTTError(f"{folder} holds no .jpg/.png frames")
    gt_path = folder / "groundtruth.txt"
    if not gt_path.is_file():
        raise MetaRTTError(f"{folder} has no groundtruth.txt")
    gt = read_otb_groundtruth(gt_path)
    if len(gt) == 1 and len(frames) > 1:
        gt = np.concatenate([gt, np.full((len(frames) - 1, 4), np.nan)])
    if len(gt) != len(frames):
        raise MetaRTTError(f"{name}: groundtruth.txt has {len(gt)} rows but the folder has "
                           f"{len(frames)} frames")
    gt[(gt[:, 2] <= 0) | (gt[:, 3] <= 0)] = np.nan
    absence = folder / "absence.label"
    if absence.is_file():
        flags = [ln.strip() for ln in absence.read_text().splitlines() if ln.strip()]
        try:
            absent = np.array([int(float(f)) for f in flags], dtype=bool)
        except ValueError:
            raise MetaRTTError(f"{absence} must hold one 0/1 flag per line") from None
        if len(absent) != len(frames):
            raise MetaRTTError(f"{name}: absence.label has {len(absent)} rows but the folder has "
                               f"{len(frames)} frames")
        gt[absent] = np.nan
    return Sequence(name=name, frame_paths=frames, groundtruth=gt)


def _open_video(path: Path) -> "cv2.VideoCapture":
    if not Path(path).is_file():
        raise MetaRTTError(f"video file {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MetaRTTError(f"video file {path} cannot be opened (no frames, or not a video OpenCV reads)")
    return cap


def count_video_frames(path: str | os.PathLike) -> int:
    """Number of decodable frames: CAP_PROP_FRAME_COUNT checked by reading the last frame, else counted."""
    path = Path(path)
    cap = _open_video(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, n - 1)
            ok, _ = cap.read()
            if ok:
                ok_next = cap.grab()
                if not ok_next:
                    return n
    finally:
        cap.release()
    cap = _open_video(path)  # the header is missing or wrong: count by reading
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def load_video(path: str | os.PathLike, init_box: _Seq[float] | np.ndarray) -> Sequence:
    """A video file as a Sequence: ground truth row 0 = ``init_box`` (0-based xywh), NaN elsewhere."""
    path = Path(path)
    n = count_video_frames(path)
    if n == 0:
        raise MetaRTTError(f"video file {path} has no frames")
    gt = np.full((n, 4), np.nan)
    seq = Sequence(name=path.stem, frame_paths=None, groundtruth=gt, video_path=path)
    gt[0] = validate_box(init_box, seq.frame_size, what="init box")
    return seq


def load_image_folder(folder: str | os.PathLike, init_box: _Seq[float] | np.ndarray,
                      name: str | None = None) -> Sequence:
    """A plain folder of frames (no ground truth): row 0 = ``init_box``, NaN elsewhere."""
    folder = Path(folder)
    frames = _image_files(folder)
    if not frames:
        raise MetaRTTError(f"{folder} holds no .jpg/.png frames")
    gt = np.full((len(frames), 4), np.nan)
    seq = Sequence(name=name or folder.name, frame_paths=frames, groundtruth=gt)
    gt[0] = validate_box(init_box, seq.frame_size, what="init box")
    return seq


def load_sequence(path: str | os.PathLike, init_box: _Seq[float] | np.ndarray | None = None,
                  allow_short_gt: bool = False) -> Sequence:
    """Load whatever ``path`` is: an OTB folder (has ``img/``), a GOT-10k folder (``groundtruth.txt`` +
    frames), a plain frame folder or a video file (these two need ``init_box``).

    For an annotated folder an explicit ``init_box`` replaces ground-truth row 0.
    """
    path = Path(path)
    if path.is_file():
        if init_box is None:
            raise MetaRTTError(f"{path} is a video file: give the initial box x,y,w,h")
        return load_video(path, init_box)
    if not path.is_dir():
        raise MetaRTTError(f"{path} does not exist")
    if (path / "img").is_dir():
        if _find_gt(path) is None and _image_files(path / "img"):  # NAME/img/ without ground truth
            if init_box is None:
                raise MetaRTTError(f"{path} holds frames in img/ but no groundtruth_rect.txt: give the "
                                   f"initial box x,y,w,h")
            return load_image_folder(path / "img", init_box, name=path.name)
        seq = load_otb_sequence(path, allow_short_gt=allow_short_gt)
    elif (path / "groundtruth.txt").is_file() and _image_files(path):
        seq = load_got10k_sequence(path)
    elif _image_files(path):
        if init_box is None:
            raise MetaRTTError(f"{path} holds frames but no ground truth: give the initial box x,y,w,h")
        return load_image_folder(path, init_box)
    else:
        raise MetaRTTError(f"{path} is neither an OTB folder (img/ + groundtruth_rect.txt), "
                           f"a GOT-10k folder, a folder of frames nor a video file")
    if init_box is not None:
        seq.groundtruth[0] = validate_box(init_box, seq.frame_size, what="init box")
    return seq


# --------------------------------------------------------------------------- the data root

class SequenceView:
    """Any video (a :class:`~metartt_lite.data.samples.SampleVideo`, a list of frames, a frame generator, ...)
    as the duck-typed sequence :func:`metartt_lite.evaluation.ope.run_sequence` expects: ``name``,
    ``groundtruth``, ``init_box``, ``len()`` and a callable ``frames()``. (A SampleVideo keeps its frames
    in a *list* attribute called ``frames``, which ``run_sequence`` would try to call.) ``n_frames`` cuts
    it to its first frames; ``bar`` (anything with ``update(n)``, e.g. tqdm) advances once per frame."""

    def __init__(self, name: str, frames: _Seq[np.ndarray] | Callable[[], Iterator[np.ndarray]],
                 groundtruth: np.ndarray, init_box: np.ndarray | None = None, n_frames: int | None = None,
                 bar: Any = None):
        self.name = name
        self._frames = frames
        self.groundtruth = np.asarray(groundtruth, dtype=np.float64).reshape(-1, 4)
        if n_frames is not None:
            self.groundtruth = self.groundtruth[:n_frames]
        self.init_box = np.asarray(init_box if init_box is not None else self.groundtruth[0], dtype=np.float64)
        self.bar = bar

    def __len__(self) -> int:
        return len(self.groundtruth)

    def frames(self) -> Iterator[np.ndarray]:
        src = self._frames() if callable(self._frames) else iter(self._frames)
        for f in itertools.islice(src, len(self)):  # never pulls a frame past the end
            yield f
            if self.bar is not None:
                self.bar.update(1)


def prefetch(frames: Iterable[np.ndarray], depth: int = 4) -> Iterator[np.ndarray]:
    """The items of ``frames`` in order, produced by a background thread up to ``depth`` ahead, so that
    decoding (OpenCV releases the GIL) overlaps the consumer's work. An exception raised by ``frames``
    is re-raised in the consumer at the point it occurred; closing the iterator early stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for f in frames:
                if not put((f, None)):
                    return
            put((end, None))
        except BaseException as e:  # handed to the consumer
            put((end, e))

    th = threading.Thread(target=work, name="metartt-prefetch", daemon=True)
    th.start()
    try:
        while True:
            f, err = q.get()
            if f is end:
                if err is not None:
                    raise err
                return
            yield f
    finally:
        stop.set()
        th.join(timeout=5)


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The data folder: ``path``, else ``$METARTT_DATA``, else ``../shared/data`` from the working dir."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise MetaRTTError(f"data folder {p} does not exist")
        return p
    env = os.environ.get("METARTT_DATA")
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise MetaRTTError(f"METARTT_DATA={env} is not a folder")
        return p
    p = Path.cwd().parent / "shared" / "data"
    if p.is_dir():
        return p.resolve()
    raise MetaRTTError("no data folder: pass one, or set METARTT_DATA=/path/to/data "
                       "(default ../shared/data does not exist)")


def looks_like_otb(folder: Path) -> bool:
    """True if ``folder`` has an ``img/`` subfolder and an OTB ground-truth file."""
    return (folder / "img").is_dir() and _find_gt(folder) is not None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:  # ValueError: bad JSON, or bytes that are not text
        raise MetaRTTError(f"cannot read {path}: {e}") from None


def read_splits(root: str | os.PathLike | None = None) -> Any:
    """The parsed ``root/splits.json`` ({split: [sequence names]} when well formed), or None without one."""
    sp = data_root(root) / "splits.json"
    return _read_json(sp) if sp.is_file() else None


def _as_names(names: str | _Seq[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n.strip()]


def list_sequences(root: str | os.PathLike | None = None, split: str | None = None,
                   names: str | _Seq[str] | None = None) -> list[str]:
    """Sequence names under ``root``: from ``sequences.json`` if present, else every OTB subfolder.

    ``split`` selects a list from ``root/splits.json``; ``names`` (list or comma string) keeps only
    those names, in the given order. Unknown splits or names raise MetaRTTError.
    """
    root = data_root(root)
    index = root / "sequences.json"
    if index.is_file():
        data = _read_json(index)
        try:
            all_names = [s["name"] for s in data["sequences"]]
        except (KeyError, TypeError):
            raise MetaRTTError(f"{index} must hold {{'sequences': [{{'name': ...}}, ...]}}") from None
    else:
        all_names = sorted(p.name for p in root.iterdir() if p.is_dir() and looks_like_otb(p))
    selected = all_names
    if split is not None:
        sp = root / "splits.json"
        splits = read_splits(root)
        if splits is None:
            raise MetaRTTError(f"split {split!r} needs {sp}, which does not exist")
        if not isinstance(splits, dict) or split not in splits:
            known = ", ".join(sorted(splits)) if isinstance(splits, dict) else "none"
            raise MetaRTTError(f"unknown split {split!r} in {sp}; known splits: {known}")
        selected = list(splits[split])
        missing = [n for n in selected if n not in all_names]
        if missing:
            raise MetaRTTError(f"split {split!r} lists sequences not in {root}: {', '.join(missing)}")
    wanted = _as_names(names)
    if wanted is not None:
        unknown = [n for n in wanted if n not in selected]
        if unknown:
            where = f"split {split!r}" if split is not None else str(root)
            raise MetaRTTError(f"unknown sequence(s) {', '.join(unknown)} in {where}; "
                               f"available: {', '.join(selected)}")
        selected = wanted
    return selected


def load_split(root: str | os.PathLike | None = None, split: str | None = None,
               names: str | _Seq[str] | None = None, allow_short_gt: bool = False) -> list[Sequence]:
    """Load the sequences :func:`list_sequences` selects (frames are read lazily)."""
    root = data_root(root)
    out = []
    for n in list_sequences(root, split, names):
        folder = root / n
        if not folder.is_dir():
            raise MetaRTTError(f"sequence {n} listed in {root / 'sequences.json'} has no folder {folder}")
        seq = load_sequence(folder, allow_short_gt=allow_short_gt)
        seq.name = n
        out.append(seq)
    return out
