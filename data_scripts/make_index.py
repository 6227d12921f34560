#!/usr/bin/env python
"""Write ``sequences.json`` (and, with ``--val``, ``splits.json``) for a folder of OTB sequences.

Usage: python data_scripts/make_index.py ROOT [--val Girl,Crossing]

Every subfolder with ``img/`` + ``groundtruth_rect.txt`` is indexed (name, n_frames, first/last frame
file, image size, first ground-truth box in the file's 1-based convention). ``--val`` puts the named
sequences in the ``val`` split and all others in ``train``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import metartt_lite  # noqa: F401
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metartt_lite.data.sequences import load_otb_sequence, looks_like_otb  # noqa: E402
from metartt_lite.core.utils import MetaRTTError, atomic_write_json  # noqa: E402

GT_FORMAT = ("groundtruth_rect.txt: one line per frame (in sorted file-name order), 'x,y,w,h', "
             "1-based pixel coordinates as in OTB")


def sequence_entry(folder: Path) -> dict:
    """Index entry of one OTB folder (first_gt is 1-based, as written in the file)."""
    seq = load_otb_sequence(folder)
    w, h = seq.frame_size
    first = seq.groundtruth[0] + [1.0, 1.0, 0.0, 0.0]
    return {"name": folder.name, "n_frames": len(seq), "first_frame": seq.frame_paths[0].name,
            "last_frame": seq.frame_paths[-1].name, "image_size": [w, h],
            "first_gt": [None if v != v else float(v) for v in first]}


def make_index(root: str | Path, val: list[str] | None = None, description: str | None = None) -> dict:
    """Index every OTB subfolder of ``root`` into ``root/sequences.json``; ``val`` also writes splits.json."""
    root = Path(root)
    if not root.is_dir():
        raise MetaRTTError(f"{root} is not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and looks_like_otb(p))
    if not folders:
        raise MetaRTTError(f"{root} holds no OTB sequence folders (NAME/img/ + NAME/groundtruth_rect.txt)")
    entries = [sequence_entry(f) for f in folders]
    index = {"description": description or "Tracking sequences in OTB layout: <name>/img/<frames> and "
                                            "<name>/groundtruth_rect.txt",
             "n_sequences": len(entries), "total_frames": sum(e["n_frames"] for e in entries),
             "gt_format": GT_FORMAT, "sequences": entries}
    names = [e["name"] for e in entries]
    if val is not None:
        unknown = [n for n in val if n not in names]
        if unknown:
            raise MetaRTTError(f"--val names unknown sequence(s) {', '.join(unknown)}; "
                               f"available: {', '.join(names)}")
    atomic_write_json(root / "sequences.json", index)
    if val is not None:
        atomic_write_json(root / "splits.json", {"train": [n for n in names if n not in val], "val": list(val)})
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="folder holding NAME/img + NAME/groundtruth_rect.txt sequences")
    ap.add_argument("--val", default=None, help="comma-separated names for the val split (writes splits.json)")
    args = ap.parse_args(argv)
    val = [n.strip() for n in args.val.split(",") if n.strip()] if args.val else None
    try:
        index = make_index(args.root, val)
    except MetaRTTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"indexed {index['n_sequences']} sequences ({index['total_frames']} frames) in "
          f"{Path(args.root) / 'sequences.json'}" + (" + splits.json" if val else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
