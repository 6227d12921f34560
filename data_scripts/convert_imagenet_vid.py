#!/usr/bin/env python
"""Convert ImageNet VID (ILSVRC2015, the paper's meta-training set) into OTB layout: one sequence per object.

Usage: python data_scripts/convert_imagenet_vid.py ILSVRC2015 DST [--subset train|val] [--limit N]
       [--min-frames 2] [--copy] [--force]

ILSVRC2015 holds ``Data/VID/<subset>/.../<snippet>/000000.JPEG`` and, at the same relative path,
``Annotations/VID/<subset>/.../<snippet>/000000.xml``: one XML file per frame, with an ``<object>`` per
annotated object (``<trackid>``, ``<name>`` (WordNet id), ``<bndbox>`` xmin/ymin/xmax/ymax). Every track
id of a snippet becomes one sequence ``<snippet>_<trackid>``: the frames from its first to its last
annotation; frames inside that range where it is not annotated (left the view, occluded) get a
``NaN,NaN,NaN,NaN`` row (excluded from scores, skipped by meta-training). The bndbox values are inclusive
0-based pixel indices (ymin = 0 at the top edge), so the 0-based box is ``xmin, ymin, xmax - xmin + 1,
ymax - ymin + 1`` (as got10k's ImageNetVID reads them); it is written 1-based like OTB. Tracks annotated
in fewer than ``--min-frames`` frames are skipped. Frames are symlinked (``--copy`` copies them).
DST/sequences.json is rewritten at the end.
"""
from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

try:
    import metartt_lite  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metartt_lite.core.utils import MetaRTTError  # noqa: E402
from make_index import make_index  # noqa: E402
from otb_out import write_otb_sequence  # noqa: E402


def snippet_folders(root: Path, subset: str) -> list[Path]:
    """Annotation folders (holding ``*.xml``) of a subset, sorted."""
    ann = root / "Annotations" / "VID" / subset
    if not ann.is_dir():
        raise MetaRTTError(f"{ann} does not exist (expected ILSVRC2015/Annotations/VID/{subset})")
    folders = sorted({p.parent for p in ann.rglob("*.xml")})
    if not folders:
        raise MetaRTTError(f"{ann} holds no .xml annotation files")
    return folders


def _int(obj: ET.Element, tag: str, xml: Path) -> int:
    el = obj.find(tag)
    if el is None or el.text is None:
        raise MetaRTTError(f"{xml}: an <object> has no <{tag}>")
    try:
        return int(float(el.text))
    except ValueError:
        raise MetaRTTError(f"{xml}: <{tag}> is not a number: {el.text!r}") from None


def read_snippet(ann_dir: Path) -> tuple[list[str], dict[str, dict[int, np.ndarray]], dict[str, str]]:
    """Frame stems in order, {trackid: {frame index: 0-based box}} and {trackid: WordNet id}."""
    xmls = sorted(ann_dir.glob("*.xml"))
    tracks: dict[str, dict[int, np.ndarray]] = {}
    classes: dict[str, str] = {}
    for f, xml in enumerate(xmls):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as e:
            raise MetaRTTError(f"{xml} is not valid XML: {e}") from None
        for obj in root.findall("object"):
            tid = (obj.findtext("trackid") or "").strip()
            if not tid:
                raise MetaRTTError(f"{xml}: an <object> has no <trackid>")
            x0, y0 = _int(obj, "bndbox/xmin", xml), _int(obj, "bndbox/ymin", xml)
            x1, y1 = _int(obj, "bndbox/xmax", xml), _int(obj, "bndbox/ymax", xml)
            if x1 < x0 or y1 < y0:
                raise MetaRTTError(f"{xml}: track {tid} has xmax < xmin or ymax < ymin")
            tracks.setdefault(tid, {})[f] = np.array([x0, y0, x1 - x0 + 1, y1 - y0 + 1], dtype=np.float64)
            classes.setdefault(tid, (obj.findtext("name") or "").strip())
    return [x.stem for x in xmls], tracks, classes


def convert_snippet(root: Path, subset: str, ann_dir: Path, dst: Path, min_frames: int = 2, copy: bool = False,
                    force: bool = False) -> list[str]:
    """Write every track of one snippet; return the names written."""
    rel = ann_dir.relative_to(root / "Annotations" / "VID" / subset)
    data_dir = root / "Data" / "VID" / subset / rel
    stems, tracks, _classes = read_snippet(ann_dir)
    done = []
    for tid in sorted(tracks, key=lambda t: int(t) if t.isdigit() else t):
        boxes = tracks[tid]
        if len(boxes) < min_frames:
            continue
        first, last = min(boxes), max(boxes)
        gt = np.full((last - first + 1, 4), np.nan)
        for f, b in boxes.items():
            gt[f - first] = b
        frames = [data_dir / f"{stems[f]}.JPEG" for f in range(first, last + 1)]
        frames = [p if p.is_file() else p.with_suffix(".jpg") for p in frames]
        name = f"{ann_dir.name}_{tid}"
        if write_otb_sequence(dst, name, frames, gt, copy=copy, force=force):
            done.append(name)
        else:
            print(f"skip {name}: {dst / name} exists (use --force)")
    return done


def convert_imagenet_vid(root: str | Path, dst: str | Path, subset: str = "train", limit: int | None = None,
                         min_frames: int = 2, copy: bool = False, force: bool = False) -> list[str]:
    """Convert the tracks of the first ``limit`` snippets of ``subset``; return the sequence names written."""
    root, dst = Path(root), Path(dst)
    folders = snippet_folders(root, subset)
    if limit is not None:
        folders = folders[:limit]
    dst.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    for ann_dir in folders:
        done += convert_snippet(root, subset, ann_dir, dst, min_frames, copy, force)
    make_index(dst, description=f"ImageNet VID {subset} tracks converted from {root} into OTB layout "
                                f"(one sequence per snippet and track id)")
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="the ILSVRC2015 folder (with Data/VID and Annotations/VID)")
    ap.add_argument("dst", help="output folder (OTB layout)")
    ap.add_argument("--subset", default="train", choices=["train", "val"])
    ap.add_argument("--limit", type=int, default=None, help="convert only the first N snippets")
    ap.add_argument("--min-frames", type=int, default=2, help="skip tracks annotated in fewer frames (default 2)")
    ap.add_argument("--copy", action="store_true", help="copy frames instead of symlinking them")
    ap.add_argument("--force", action="store_true", help="replace sequences that already exist in DST")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    try:
        done = convert_imagenet_vid(args.src, args.dst, args.subset, args.limit, args.min_frames, args.copy,
                                    args.force)
    except (MetaRTTError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"converted {len(done)} track(s) into {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
