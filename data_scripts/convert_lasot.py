#!/usr/bin/env python
"""Convert LaSOT into OTB layout (NAME/img/*.jpg + NAME/groundtruth_rect.txt).

Usage: python data_scripts/convert_lasot.py LaSOT DST [--classes airplane,bird] [--limit N]
       [--test-list testing_set.txt [--only-test]] [--keep-absent] [--copy] [--force]

LaSOT holds ``<class>/<class>-<k>/img/00000001.jpg ...`` with ``groundtruth.txt`` (``x,y,w,h`` per frame,
1-based like OTB), ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated 0/1 flag per frame).
Each ``<class>-<k>`` becomes one sequence of the same name. Frames flagged fully occluded or out of view,
and boxes with no area, become ``NaN,NaN,NaN,NaN`` rows: metartt_lite's scores leave them out and
meta-training skips them (LaSOT's own toolkit scores every frame: ``--keep-absent`` keeps the annotated
boxes of flagged frames instead). ``--test-list`` (LaSOT's ``testing_set.txt``, one name per line) writes
``splits.json`` with those sequences as ``val`` and the rest as ``train``; with ``--only-test`` only they
are converted. Frames are symlinked (``--copy`` copies them). DST/sequences.json is rewritten at the end.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

try:
    import metartt_lite  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metartt_lite.data.sequences import _image_files, read_otb_groundtruth  # noqa: E402
from metartt_lite.core.utils import MetaRTTError  # noqa: E402
from make_index import make_index  # noqa: E402
from otb_out import write_otb_sequence  # noqa: E402

_NAME = re.compile(r"^(.+)-(\d+)$")


def lasot_sequence_folders(root: Path, classes: list[str] | None = None) -> list[Path]:
    """``<class>/<class>-<k>`` folders holding ``groundtruth.txt``, sorted by class then k."""
    if not root.is_dir():
        raise MetaRTTError(f"LaSOT folder {root} does not exist")
    if classes is not None:
        missing = [c for c in classes if not (root / c).is_dir()]
        if missing:
            raise MetaRTTError(f"{root} has no class folder(s) {', '.join(missing)}")
    folders = []
    for cdir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if classes is not None and cdir.name not in classes:
            continue
        for s in cdir.iterdir():
            m = _NAME.match(s.name)
            if s.is_dir() and m and m.group(1) == cdir.name and (s / "groundtruth.txt").is_file():
                folders.append(s)
    folders.sort(key=lambda p: (p.parent.name, int(_NAME.match(p.name).group(2))))
    if not folders:
        raise MetaRTTError(f"{root} holds no LaSOT sequences (<class>/<class>-<k>/groundtruth.txt)")
    return folders


def _flags(path: Path, n: int) -> np.ndarray:
    """A LaSOT flag file (comma/space/newline separated 0/1) as a bool array; all False if absent."""
    if not path.is_file():
        return np.zeros(n, dtype=bool)
    tokens = [t for t in re.split(r"[,\s]+", path.read_text().strip()) if t]
    try:
        flags = np.array([int(float(t)) for t in tokens], dtype=int)
    except ValueError:
        raise MetaRTTError(f"{path} must hold 0/1 flags") from None
    if len(flags) != n:
        raise MetaRTTError(f"{path} has {len(flags)} flags but the sequence has {n} frames")
    return flags.astype(bool)


def read_lasot_sequence(folder: Path, keep_absent: bool = False) -> tuple[list[Path], np.ndarray]:
    """Frame files and (N, 4) 0-based boxes, NaN where the target is absent (unless ``keep_absent``)."""
    img = folder / "img"
    if not img.is_dir():
        raise MetaRTTError(f"{folder} has no img/ folder")
    frames = _image_files(img)
    gt = read_otb_groundtruth(folder / "groundtruth.txt")
    if len(gt) != len(frames):
        raise MetaRTTError(f"{folder.name}: groundtruth.txt has {len(gt)} rows but img/ has {len(frames)} frames")
    absent = (gt[:, 2] <= 0) | (gt[:, 3] <= 0)
    if not keep_absent:
        absent |= _flags(folder / "full_occlusion.txt", len(gt)) | _flags(folder / "out_of_view.txt", len(gt))
    gt[absent] = np.nan
    return frames, gt


def _names(path: Path) -> list[str]:
    if not path.is_file():
        raise MetaRTTError(f"--test-list {path} does not exist")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def convert_lasot(src: str | Path, dst: str | Path, classes: list[str] | None = None, limit: int | None = None,
                  test_list: str | Path | None = None, only_test: bool = False, keep_absent: bool = False,
                  copy: bool = False, force: bool = False) -> list[str]:
    """Convert LaSOT sequences into ``dst``; return the names written."""
    src, dst = Path(src), Path(dst)
    folders = lasot_sequence_folders(src, classes)
    test = _names(Path(test_list)) if test_list is not None else None
    if only_test:
        if test is None:
            raise MetaRTTError("--only-test needs --test-list")
        have = {f.name for f in folders}
        missing = [n for n in test if n not in have]
        if missing:
            raise MetaRTTError(f"--test-list names {len(missing)} sequence(s) not in {src}, e.g. {missing[0]}")
        folders = [f for f in folders if f.name in set(test)]
    if limit is not None:
        folders = folders[:limit]
    dst.mkdir(parents=True, exist_ok=True)
    done = []
    for f in folders:
        frames, gt = read_lasot_sequence(f, keep_absent)
        if write_otb_sequence(dst, f.name, frames, gt, copy=copy, force=force):
            done.append(f.name)
        else:
            print(f"skip {f.name}: {dst / f.name} exists (use --force)")
    present = {p.name for p in dst.iterdir() if p.is_dir()}
    val = [n for n in test if n in present] if test is not None else None
    make_index(dst, val=val, description=f"LaSOT sequences converted from {src} into OTB layout")
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="the LaSOT folder (<class>/<class>-<k>/...)")
    ap.add_argument("dst", help="output folder (OTB layout)")
    ap.add_argument("--classes", default=None, help="comma-separated class folders to convert (default: all)")
    ap.add_argument("--limit", type=int, default=None, help="convert only the first N sequences")
    ap.add_argument("--test-list", default=None, help="LaSOT's testing_set.txt: those sequences become 'val'")
    ap.add_argument("--only-test", action="store_true", help="convert only the --test-list sequences")
    ap.add_argument("--keep-absent", action="store_true",
                    help="keep the boxes of frames flagged fully occluded / out of view (default: NaN rows)")
    ap.add_argument("--copy", action="store_true", help="copy frames instead of symlinking them")
    ap.add_argument("--force", action="store_true", help="replace sequences that already exist in DST")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    try:
        done = convert_lasot(args.src, args.dst, classes, args.limit, args.test_list, args.only_test,
                             args.keep_absent, args.copy, args.force)
    except (MetaRTTError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"converted {len(done)} sequence(s) into {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
