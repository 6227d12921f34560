"""Your own OTB folders in the layouts the benchmark toolkits read: a VOT toolkit workspace and GOT-10k's
``val`` split. (The toolkits' own OTB readers accept only OTB's sequence names and download the rest.)

VOT workspace (:func:`write_vot_workspace`)::

    WS/config.yaml              stack: ./stack.yaml, registry: [./trackers.ini]
    WS/stack.yaml               one 'baseline' experiment (unsupervised, average accuracy), as the toolkit's otb100
    WS/trackers.ini             one TraX entry per tracker: python -m metartt_lite.vot --tracker NAME
    WS/sequences/list.txt       the sequence names
    WS/sequences/NAME/sequence  channels.color=color/%08d.jpg, fps, length, width, height
    WS/sequences/NAME/color/00000001.jpg ...
    WS/sequences/NAME/groundtruth.txt   x,y,w,h per frame, 0-based (VOT's convention); absent frames '0'

then ``vot evaluate --workspace WS NAME`` and ``vot analysis --workspace WS NAME``.

GOT-10k val layout (:func:`write_got10k_val`)::

    ROOT/val/list.txt
    ROOT/val/NAME/00000001.jpg ...          (JPEG; got10k lists *.jpg only)
    ROOT/val/NAME/groundtruth.txt           x,y,w,h per frame, 1-based (GOT-10k's convention)
    ROOT/val/NAME/meta_info.ini             [METAINFO] + resolution: (W, H) ...
    ROOT/val/NAME/absence.label             1 where the target is absent (no ground truth), else 0
    ROOT/val/NAME/cover.label               visible ratio in eighths: 8, or 0 where absent
    ROOT/val/NAME/cut_by_image.label        1 where the box reaches past the frame, else 0

then ``ExperimentGOT10k(ROOT, subset="val")`` runs and reports. Frames are hard-linked where the file
system allows it (JPEG sources), else copied or re-encoded; every file is written atomically.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Sequence as _Seq

import cv2
import numpy as np

from ..core.utils import MetaRTTError, atomic_write
from .sequences import Sequence, load_sequence

__all__ = ["write_vot_workspace", "write_got10k_val", "find_sequences", "VOT_STACK"]

VOT_STACK = """title: metartt_lite workspace (OTB-style sequences; the toolkit's otb100 experiment)
experiments:
  baseline:
    type: unsupervised
    analyses:
      - type: average_accuracy
        name: accuracy
        burnin: 1
"""


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def find_sequences(src: str | os.PathLike, names: _Seq[str] | None = None) -> list[Sequence]:
    """The annotated sequences under ``src``: ``src`` itself when it is one, else each sub-folder that is
    (``names`` picks some). A folder without ground truth is an error: the toolkits score against it."""
    src = Path(src).expanduser()
    if not src.is_dir():
        raise MetaRTTError(f"{src} is not a folder of sequences")
    if (src / "img").is_dir() or (src / "groundtruth.txt").is_file():
        folders = [src]
    else:
        folders = sorted(p for p in src.iterdir() if p.is_dir() and ((p / "img").is_dir() or (p / "groundtruth.txt").is_file()))
    if names:
        have = {p.name: p for p in folders}
        missing = [n for n in names if n not in have]
        if missing:
            raise MetaRTTError(f"no sequence {', '.join(missing)} in {src}; it has: {', '.join(have) or 'none'}")
        folders = [have[n] for n in names]
    if not folders:
        raise MetaRTTError(f"{src} holds no OTB sequence (NAME/img/ + groundtruth_rect.txt)")
    return [load_sequence(f) for f in folders]


def _put_frame(src: Path, dst: Path, jpeg_only: bool) -> None:
    """``dst`` = frame ``src``: a hard link or copy when the formats agree, else re-encoded (JPEG, quality 95)."""
    if dst.exists():
        dst.unlink()
    if src.suffix.lower() == dst.suffix.lower() or (not jpeg_only and src.suffix.lower() in (".jpg", ".jpeg")):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        return
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if img is None:
        raise MetaRTTError(f"cannot read frame {src}")
    if not cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise MetaRTTError(f"cannot write frame {dst}")


def _frames(seq: Sequence) -> list[Path]:
    if seq.frame_paths is None:
        raise MetaRTTError(f"{seq.name} is a video file; give a folder of frames (OTB: NAME/img/)")
    return [Path(p) for p in seq.frame_paths]


def _box_lines(gt: np.ndarray, offset: float, absent: str) -> str:
    lines = []
    for row in np.asarray(gt, dtype=np.float64):
        if not np.all(np.isfinite(row)):
            lines.append(absent)
        else:
            x, y, w, h = row
            lines.append(",".join(f"{v:.4f}".rstrip("0").rstrip(".") for v in (x + offset, y + offset, w, h)))
    return "\n".join(lines) + "\n"


def _trackers_ini(trackers: _Seq[str], python: str) -> str:
    out = []
    for t in trackers:
        out.append(f"[{t}]\nlabel = metartt_lite {t}\nprotocol = trax\n"
                   f"command = {python} -m metartt_lite.vot --tracker {t}\n"
                   f"# env_METARTT_DEVICE = cuda\n")
    return "\n".join(out)


def write_vot_workspace(src: str | os.PathLike, ws: str | os.PathLike, trackers: _Seq[str] = ("metartt",),
                        names: _Seq[str] | None = None, python: str | None = None) -> Path:
    """Write a VOT toolkit workspace at ``ws`` from the OTB sequences under ``src`` (layout in the module
    docstring); ``trackers`` get TraX entries run by ``python`` (default: this interpreter). An existing
    workspace is refused (the toolkit keeps results in it)."""
    ws = Path(ws).expanduser()
    if (ws / "config.yaml").exists():
        raise MetaRTTError(f"{ws} is already a VOT workspace (config.yaml exists); give a new folder")
    if ws.exists() and not ws.is_dir():
        raise MetaRTTError(f"{ws} exists and is not a folder")
    seqs = find_sequences(src, names)
    seq_root = ws / "sequences"
    for seq in seqs:
        frames = _frames(seq)
        ext = frames[0].suffix.lower()
        ext = ".jpg" if ext == ".jpeg" else ext
        color = seq_root / seq.name / "color"
        color.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames, start=1):
            _put_frame(f, color / f"{i:08d}{ext}", jpeg_only=False)
        W, H = seq.frame_size
        _write_text(seq_root / seq.name / "groundtruth.txt", _box_lines(seq.groundtruth, 0.0, "0"))
        _write_text(seq_root / seq.name / "sequence",
                    f"channels.color=color/%08d{ext}\nfps=30\nformat=default\nname={seq.name}\n"
                    f"length={len(frames)}\nwidth={W}\nheight={H}\n")
    _write_text(seq_root / "list.txt", "\n".join(s.name for s in seqs) + "\n")
    _write_text(ws / "stack.yaml", VOT_STACK)
    _write_text(ws / "trackers.ini", _trackers_ini(trackers, python or sys.executable))
    (ws / "results").mkdir(exist_ok=True)
    _write_text(ws / "config.yaml", "registry:\n- ./trackers.ini\nstack: ./stack.yaml\n")
    return ws


def write_got10k_val(src: str | os.PathLike, root: str | os.PathLike, names: _Seq[str] | None = None) -> Path:
    """Write ``root/val/`` in GOT-10k's layout from the OTB sequences under ``src`` (module docstring), so
    that ``got10k.experiments.ExperimentGOT10k(root, subset="val")`` runs and reports offline."""
    root = Path(root).expanduser()
    val = root / "val"
    seqs = find_sequences(src, names)
    for seq in seqs:
        frames = _frames(seq)
        d = val / seq.name
        d.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames, start=1):
            _put_frame(f, d / f"{i:08d}.jpg", jpeg_only=True)
        gt = np.asarray(seq.groundtruth, dtype=np.float64)
        W, H = seq.frame_size
        present = np.all(np.isfinite(gt), axis=1)
        with np.errstate(invalid="ignore"):
            cut = present & ((gt[:, 0] < 0) | (gt[:, 1] < 0) | (gt[:, 0] + gt[:, 2] > W) | (gt[:, 1] + gt[:, 3] > H))
        _write_text(d / "groundtruth.txt", _box_lines(gt, 1.0, "0,0,0,0"))
        _write_text(d / "absence.label", "".join(f"{int(not p)}\n" for p in present))
        _write_text(d / "cover.label", "".join(f"{8 if p else 0}\n" for p in present))
        _write_text(d / "cut_by_image.label", "".join(f"{int(c)}\n" for c in cut))
        _write_text(d / "meta_info.ini", f"[METAINFO]\nurl: {seq.name}\nbegin_frame: 1\nend_frame: {len(frames)}\n"
                                         f"object_class: unknown\nmotion_class: unknown\nmajor_class: unknown\n"
                                         f"root_class: unknown\nmotion_adverb: unknown\nresolution: ({W}, {H})\n")
    _write_text(val / "list.txt", "\n".join(s.name for s in seqs) + "\n")
    return root
