"""Your own video in and out: its frame rate, an H.264 mp4 that browsers play, the boxes as JSON / CSV /
OTB text, and a first frame with a labelled pixel grid for reading the first box off it.

* :func:`source_fps` — the frame rate stored in a video file (OpenCV's ``CAP_PROP_FPS``), else None.
* :func:`write_h264` — frames → H.264 (``libx264``, ``yuv420p``, ``+faststart``) through the ffmpeg binary
  that the ``imageio-ffmpeg`` wheel bundles (no system ffmpeg needed). Odd widths/heights are padded by one
  black pixel (yuv420p needs even sides). Written atomically. Chromium, Firefox, Safari and JupyterLab
  play it; OpenCV's own ``mp4v`` files do not play in browsers.
* :func:`write_boxes` — ``json`` (frame, box, score per row), ``csv`` (``frame,x,y,w,h,score``, 0-based
  px) or ``otb`` (``groundtruth_rect.txt`` style: 1-based ``x,y,w,h``, one line per frame).
* :func:`grid_image` / :func:`write_first_frame_grid` — the ``pick-box`` command: OpenCV's interactive
  ``cv2.selectROI`` needs a GUI window, which the headless OpenCV build (and a server, a container, CI)
  does not have; so we draw a pixel grid labelled in 0-based coordinates over the first frame and the
  user reads ``x,y,w,h`` off the PNG.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from .sequences import VIDEO_EXTS, _image_files, _open_video, as_rgb, read_frame, write_otb_groundtruth
from ..core.utils import MetaRTTError, atomic_write

__all__ = ["BOX_FORMATS", "DEFAULT_FPS", "source_fps", "first_frame", "ffmpeg_exe", "write_h264", "write_boxes",
           "format_from_path", "grid_image", "write_first_frame_grid"]

BOX_FORMATS = ("json", "csv", "otb")
DEFAULT_FPS = 30.0  # image folders and files without a usable rate


def source_fps(path: str | os.PathLike) -> float | None:
    """The frame rate stored in video file ``path``; None for a folder, an unreadable file or a rate
    outside (0, 1000] (some containers store 0 or 90000)."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in VIDEO_EXTS:
        return None
    cap = cv2.VideoCapture(str(p))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return fps if np.isfinite(fps) and 0.0 < fps <= 1000.0 else None


def first_frame(path: str | os.PathLike) -> np.ndarray:
    """The first frame (RGB uint8) of a video file, an OTB folder (``img/``) or a folder of frames."""
    p = Path(path)
    if p.is_file():
        cap = _open_video(p)
        try:
            ok, img = cap.read()
        finally:
            cap.release()
        if not ok or img is None:
            raise MetaRTTError(f"video file {p} has no decodable first frame")
        return as_rgb(img, what=f"first frame of {p}", bgr=True)
    if not p.is_dir():
        raise MetaRTTError(f"{p} does not exist")
    folder = p / "img" if (p / "img").is_dir() else p
    files = _image_files(folder)
    if not files:
        raise MetaRTTError(f"{folder} holds no .jpg/.png frames and is not a video file")
    return read_frame(files[0])


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with ``imageio-ffmpeg`` (or $IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MetaRTTError("writing an H.264 mp4 needs the imageio-ffmpeg package: "
                           "pip install imageio-ffmpeg") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise MetaRTTError(f"imageio-ffmpeg found no ffmpeg binary: {e}") from None


def write_h264(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, crf: int = 23,
               progress: Any = None) -> Path:
    """Encode RGB uint8 frames (all the size of the first) as an H.264 mp4 at ``fps``, atomically.

    ``progress``: anything with ``update(n)`` (a tqdm bar), advanced once per frame. A frame of another
    size is resized to the first one's. Raises MetaRTTError when there is no frame or ffmpeg fails
    (its last lines of output in the message)."""
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise MetaRTTError(f"cannot write {path}: an H.264 video needs the .mp4 extension")
    fps = float(fps)
    if not (np.isfinite(fps) and fps > 0):
        raise MetaRTTError(f"frame rate {fps} must be a positive number")
    exe = ffmpeg_exe()

    def _w(tmp: str) -> None:
        it = iter(frames)
        try:
            first = as_rgb(next(it), what="frame 0")
        except StopIteration:
            raise MetaRTTError(f"no frames to write to {path}") from None
        h, w = first.shape[:2]
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-vcodec", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-r", f"{fps:.6g}", "-i", "-", "-an",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sides
               "-c:v", "libx264", "-preset", "veryfast", "-crf", str(int(crf)), "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", "-f", "mp4", tmp]
        errf = open(tmp + ".log", "w+b")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf)
        try:
            try:
                f, i = first, 0
                while True:
                    if f.shape[:2] != (h, w):
                        f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                    proc.stdin.write(np.ascontiguousarray(f).tobytes())
                    if progress is not None:
                        progress.update(1)
                    try:
                        f = as_rgb(next(it), what=f"frame {i + 1}")
                    except StopIteration:
                        break
                    i += 1
            except BrokenPipeError:
                pass  # ffmpeg died: its message is read below
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            errf.seek(0)
            log = errf.read().decode("utf-8", "replace").strip()
            errf.close()
            os.unlink(tmp + ".log")
        if rc != 0 or os.path.getsize(tmp) == 0:
            tail = " | ".join(log.splitlines()[-3:]) or f"exit code {rc}"
            raise MetaRTTError(f"ffmpeg could not write {path}: {tail}")
    return atomic_write(path, _w)


def format_from_path(path: str | os.PathLike) -> str:
    """The boxes format an output file name implies: ``.csv`` → csv, ``.txt`` → otb, else json."""
    ext = Path(path).suffix.lower()
    return {".csv": "csv", ".txt": "otb"}.get(ext, "json")


def _num(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.4f}".rstrip("0").rstrip(".")


def write_boxes(path: str | os.PathLike, boxes: np.ndarray, fmt: str, scores: Sequence[float] | None = None,
                meta: dict | None = None, success: Sequence[bool] | None = None) -> Path:
    """Write (N, 4) 0-based ``[x, y, w, h]`` boxes (one per frame) as ``fmt``, atomically.

    * ``csv``: header ``frame,x,y,w,h,score`` (``,success`` with 0/1 flags when ``success`` is given);
      frame is 0-based, boxes 0-based px; a lost (non-finite) box is written ``nan``.
    * ``otb``: ``x,y,w,h`` per line, **1-based** like OTB's ``groundtruth_rect.txt`` (readable by
      :func:`metartt_lite.data.read_otb_groundtruth`).
    * ``json``: ``{"boxes": [[x, y, w, h], ...] (0-based), "scores": [...], **meta}``.
    """
    fmt = str(fmt).lower()
    if fmt not in BOX_FORMATS:
        raise MetaRTTError(f"unknown boxes format {fmt!r}; use one of {', '.join(BOX_FORMATS)}")
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.ones(len(b)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise MetaRTTError(f"{len(b)} boxes but {len(s)} scores")
    ok = None if success is None else [bool(v) for v in success]
    if ok is not None and len(ok) != len(b):
        raise MetaRTTError(f"{len(b)} boxes but {len(ok)} success flags")
    if fmt == "otb":
        return write_otb_groundtruth(path, b)
    if fmt == "csv":
        text = "frame,x,y,w,h,score" + (",success" if ok is not None else "") + "\n" + "".join(
            f"{i},{','.join(_num(v) for v in row)},{_num(sc)}" + (f",{int(ok[i])}" if ok is not None else "") + "\n"
            for i, (row, sc) in enumerate(zip(b, s)))
    else:
        clean = lambda a: [[None if not np.isfinite(v) else float(v) for v in r] for r in a]  # noqa: E731
        obj = dict(meta or {})
        obj["boxes"] = clean(b)
        obj["scores"] = [None if not np.isfinite(v) else float(v) for v in s]
        if ok is not None:
            obj["success"] = ok
        text = json.dumps(obj, indent=1)

    def _w(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    return atomic_write(path, _w)


def _nice_step(size: int, target_lines: int = 10) -> int:
    raw = max(1, size / target_lines)
    for s in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if s >= raw:
            return s
    return int(np.ceil(raw / 1000) * 1000)


def grid_image(frame: np.ndarray, step: int | None = None) -> np.ndarray:
    """A copy of an RGB frame with a pixel grid every ``step`` px (default: about 10 lines across the
    longer side, rounded to 5/10/20/25/50/100 ...), each line labelled with its 0-based coordinate along
    the top and left edges. Pixel (x, y) of the frame stays at (x, y) of the result."""
    img = as_rgb(frame, what="first frame").copy()
    h, w = img.shape[:2]
    step = int(step) if step else _nice_step(max(w, h))
    if step < 2:
        raise MetaRTTError(f"grid step {step} must be at least 2 px")
    minor = step // 5 if step >= 10 and step % 5 == 0 else None
    overlay = img.copy()
    if minor:
        for x in range(0, w, minor):
            overlay[:, x] = (255, 255, 255)
        for y in range(0, h, minor):
            overlay[y, :] = (255, 255, 255)
        img = cv2.addWeighted(overlay, 0.25, img, 0.75, 0)
    for x in range(0, w, step):
        img[:, x] = (255, 255, 0)
    for y in range(0, h, step):
        img[y, :] = (255, 255, 0)
    scale = max(0.35, min(w, h) / 900)
    thick = max(1, int(round(scale * 2)))
    for x in range(step, w, step):
        _label(img, str(x), (x_label_left(str(x), x, w, scale, thick), int(14 * scale / 0.35 * 0.8) + 2),
               scale, thick)
    for y in range(step, h, step):
        _label(img, str(y), (2, y - 3), scale, thick)
    _label(img, "0", (2, int(14 * scale / 0.35 * 0.8) + 2), scale, thick)
    return img


def x_label_left(text: str, x: int, width: int, scale: float, thick: int) -> int:
    """Left edge of the label of grid column ``x``: right of the line, or left of it where the text (with
    its outline) would run past the image's right edge (e.g. "700" on a 720-px frame)."""
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick + 2)
    return x + 2 if x + 2 + tw <= width - 1 else max(0, x - 2 - tw)


def _label(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), thick, cv2.LINE_AA)


def write_first_frame_grid(path: str | os.PathLike, frame: np.ndarray, step: int | None = None,
                           box: Sequence[float] | None = None) -> Path:
    """Write :func:`grid_image` of ``frame`` as a PNG (atomically); ``box`` (0-based xywh), when given,
    is drawn in red so the user can check a box before tracking with it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise MetaRTTError(f"cannot write {path}: the grid image is a .png")
    img = grid_image(frame, step)
    if box is not None:
        x, y, bw, bh = (float(v) for v in box)
        cv2.rectangle(img, (int(round(x)), int(round(y))), (int(round(x + bw)) - 1, int(round(y + bh)) - 1),
                      (255, 0, 0), 2)

    def _w(tmp: str) -> None:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if not ok:
            raise MetaRTTError(f"could not encode {path}")
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
    return atomic_write(path, _w)
