"""Writing one sequence in the OTB layout metartt_lite reads, shared by the converters.

``write_otb_sequence(dst, name, frames, gt)``: ``dst/name/img/`` gets one link (or copy) per frame, named
``{i:08d}.jpg`` in frame order (the original file's bytes: a ``.JPEG`` is still a JPEG), and
``dst/name/groundtruth_rect.txt`` the 0-based boxes ``gt`` written 1-based (NaN rows: absent target). The
sequence is built in ``dst/.name.partial`` and renamed into place, so an interrupted run leaves no
half-written sequence behind.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

try:
    import metartt_lite  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metartt_lite.data.sequences import write_otb_groundtruth  # noqa: E402
from metartt_lite.core.utils import MetaRTTError  # noqa: E402


def write_otb_sequence(dst: Path, name: str, frames: Sequence[Path], gt: np.ndarray, copy: bool = False,
                       force: bool = False) -> bool:
    """Write one sequence; False (nothing written) if ``dst/name`` exists and not ``force``."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if len(frames) != len(gt):
        raise MetaRTTError(f"{name}: {len(frames)} frames but {len(gt)} boxes")
    if not len(frames):
        raise MetaRTTError(f"{name}: no frames")
    if not np.all(np.isfinite(gt[0])):
        raise MetaRTTError(f"{name}: the first frame has no box")
    for p in frames:
        if not Path(p).is_file():
            raise MetaRTTError(f"{name}: frame {p} is missing")
    out = dst / name
    if out.exists():
        if not force:
            return False
        shutil.rmtree(out)
    tmp = dst / f".{name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "img").mkdir(parents=True)
    for i, p in enumerate(frames, start=1):
        target = tmp / "img" / f"{i:08d}.jpg"
        if copy:
            shutil.copy2(p, target)
        else:
            os.symlink(Path(p).resolve(), target)
    write_otb_groundtruth(tmp / "groundtruth_rect.txt", gt)
    os.replace(tmp, out)
    return True
