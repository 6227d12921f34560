#!/usr/bin/env python
"""Convert a local GOT-10k split folder into OTB layout (NAME/img/*.jpg + NAME/groundtruth_rect.txt).

Usage: python data_scripts/convert_got10k.py SRC DST [--limit N] [--copy] [--force]

SRC is a GOT-10k split folder (e.g. GOT-10k/val) whose sequence folders hold 00000001.jpg ... and
groundtruth.txt (+ absence.label). Frames are symlinked (``--copy`` copies them). GOT-10k boxes are
1-based like OTB (got-10k/toolkit issue #6); they are read with ``metartt_lite.data.sequences`` (which makes
them 0-based) and written back 1-based, so the numbers are unchanged; frames marked absent become
``NaN,NaN,NaN,NaN`` rows, and a test-split sequence (first box only) gets NaN rows after frame 1.
DST/sequences.json is rewritten at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

try:
    import metartt_lite  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metartt_lite.data.sequences import load_got10k_sequence, write_otb_groundtruth  # noqa: E402
from metartt_lite.core.utils import MetaRTTError  # noqa: E402
from make_index import make_index  # noqa: E402


def got10k_sequence_folders(src: Path) -> list[Path]:
    """Sequence folders of a split: in ``list.txt`` order if present, else sorted."""
    if not src.is_dir():
        raise MetaRTTError(f"GOT-10k folder {src} does not exist")
    listing = src / "list.txt"
    if listing.is_file():
        names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
        missing = [n for n in names if not (src / n).is_dir()]
        if missing:
            raise MetaRTTError(f"{listing} names {len(missing)} missing folder(s), e.g. {missing[0]}")
        return [src / n for n in names]
    folders = sorted(p for p in src.iterdir() if p.is_dir() and (p / "groundtruth.txt").is_file())
    if not folders:
        raise MetaRTTError(f"{src} holds no GOT-10k sequence folders (with groundtruth.txt)")
    return folders


def convert_sequence(folder: Path, dst: Path, copy: bool = False, force: bool = False) -> bool:
    """Write one GOT-10k sequence as ``dst/NAME``; False if it already exists (and not ``force``)."""
    seq = load_got10k_sequence(folder)
    out = dst / folder.name
    if out.exists():
        if not force:
            return False
        shutil.rmtree(out)
    tmp = dst / f".{folder.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "img").mkdir(parents=True)
    for p in seq.frame_paths:
        target = tmp / "img" / p.name
        if copy:
            shutil.copy2(p, target)
        else:
            os.symlink(p.resolve(), target)
    write_otb_groundtruth(tmp / "groundtruth_rect.txt", seq.groundtruth)
    os.replace(tmp, out)
    return True


def convert_got10k(src: str | Path, dst: str | Path, limit: int | None = None, copy: bool = False,
                   force: bool = False) -> list[str]:
    """Convert the first ``limit`` sequences of ``src`` into ``dst``; return the converted names."""
    src, dst = Path(src), Path(dst)
    folders = got10k_sequence_folders(src)
    if limit is not None:
        folders = folders[:limit]
    dst.mkdir(parents=True, exist_ok=True)
    done = []
    for f in folders:
        if convert_sequence(f, dst, copy=copy, force=force):
            done.append(f.name)
        else:
            print(f"skip {f.name}: {dst / f.name} exists (use --force)")
    make_index(dst, description=f"GOT-10k sequences converted from {src} into OTB layout")
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="GOT-10k split folder (e.g. GOT-10k/val)")
    ap.add_argument("dst", help="output folder (OTB layout)")
    ap.add_argument("--limit", type=int, default=None, help="convert only the first N sequences")
    ap.add_argument("--copy", action="store_true", help="copy frames instead of symlinking them")
    ap.add_argument("--force", action="store_true", help="replace sequences that already exist in DST")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    try:
        done = convert_got10k(args.src, args.dst, args.limit, args.copy, args.force)
    except (MetaRTTError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"converted {len(done)} sequence(s) into {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
