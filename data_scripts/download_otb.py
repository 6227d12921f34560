#!/usr/bin/env python
"""Download OTB-100 sequences and unpack them into OTB layout (NAME/img/*.jpg + NAME/groundtruth_rect.txt).

Usage: python data_scripts/download_otb.py --names Basketball,Girl,Jogging-1 --out DIR
                                           [--url-template URL] [--keep-zips] [--force]

``--url-template`` is formatted with ``{name}`` (the zip's name, e.g. ``Jogging`` for Jogging-1/-2);
it may be an http(s):// or file:// URL or a local path such as ``/mnt/otb/{name}.zip``.
Only :func:`fetch` touches the network; :func:`unpack_otb_zip` works offline on a local zip.
Quirks handled: the sequence folder may be nested anywhere in the zip (``Jogging/img``), multi-target
sequences ship ``groundtruth_rect.1.txt`` / ``.2.txt`` (written as ``Jogging-1`` / ``Jogging-2``),
ground truth may be tab/space separated (rewritten as 1-based ``x,y,w,h`` with commas), macOS junk
(``__MACOSX``, ``.DS_Store``) is skipped, and sequences whose benchmark frame range is a sub-range of
the zip's frames (David starts at 0300, ...) are cut to that range. DIR/sequences.json is rewritten.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

try:
    import metartt_lite  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metartt_lite.data.sequences import IMAGE_EXTS, read_otb_groundtruth, write_otb_groundtruth  # noqa: E402
from metartt_lite.core.utils import MetaRTTError  # noqa: E402
from make_index import make_index  # noqa: E402

URL_TEMPLATE = "http://cvlab.hanyang.ac.kr/tracker_benchmark/seq/{name}.zip"
# Sequences whose OTB-100 zip holds one folder with several targets (groundtruth_rect.N.txt).
MULTI_TARGET = {"Jogging", "Skating2", "Human4"}
# OTB-100 sequences evaluated on a sub-range of the zip's frames (configSeqs100.m: startFrame, endFrame).
OTB_FRAME_RANGES = {"David": (300, 770), "BlurCar1": (247, 988), "BlurCar3": (3, 359),
                    "BlurCar4": (18, 397), "Diving": (1, 215), "Football1": (1, 74),
                    "Freeman3": (1, 460), "Freeman4": (1, 283)}
_GT_RE = re.compile(r"^groundtruth_rect(?:\.(\d+))?\.txt$|^groundtruth\.txt$", re.IGNORECASE)


def split_name(name: str) -> tuple[str, str | None]:
    """'Jogging-1' -> ('Jogging', '1'); 'Basketball' -> ('Basketball', None)."""
    m = re.fullmatch(r"(.+)-(\d+)", name)
    if m and m.group(1) in MULTI_TARGET:
        return m.group(1), m.group(2)
    return name, None


def fetch(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` (http, https, file, or a plain local path) to ``dest``. The only network code."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if not urllib.parse.urlparse(url).scheme or re.match(r"^[A-Za-z]:[\\/]", url):
        src = Path(url).expanduser()
        if not src.is_file():
            raise MetaRTTError(f"{src} does not exist")
        shutil.copyfile(src, part)
    else:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        except (OSError, ValueError) as e:
            part.unlink(missing_ok=True)
            raise MetaRTTError(f"cannot download {url}: {e}") from None
    os.replace(part, dest)
    return dest


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for m in zf.infolist():
        target = (dest / m.filename).resolve()
        if target != root and root not in target.parents:
            raise MetaRTTError(f"zip member {m.filename!r} would be written outside {dest}")
    zf.extractall(dest)


def _is_junk(p: Path, base: Path) -> bool:
    return any(part == "__MACOSX" or part.startswith(".") for part in p.relative_to(base).parts)


def _frame_number(p: Path) -> int | None:
    digits = re.findall(r"\d+", p.stem)
    return int(digits[-1]) if digits else None


def _select_frames(frames: list[Path], n_gt: int, name: str, base: str) -> list[Path]:
    """Match frames to ``n_gt`` ground-truth rows (OTB frame ranges; else the first ``n_gt``)."""
    if len(frames) == n_gt:
        return frames
    if base in OTB_FRAME_RANGES or name in OTB_FRAME_RANGES:
        lo, hi = OTB_FRAME_RANGES.get(name, OTB_FRAME_RANGES.get(base))
        frames = [p for p in frames if (k := _frame_number(p)) is not None and lo <= k <= hi]
    if len(frames) < n_gt:
        raise MetaRTTError(f"{name}: ground truth has {n_gt} rows but only {len(frames)} frames")
    if len(frames) > n_gt:
        print(f"warning: {name}: keeping the first {n_gt} of {len(frames)} frames (ground truth is shorter)")
        frames = frames[:n_gt]
    return frames


def unpack_otb_zip(zip_path: str | Path, out_dir: str | Path, name: str | None = None,
                   targets: list[str] | None = None, force: bool = False) -> list[str]:
    """Unpack one OTB zip into ``out_dir/NAME`` folders in normalised OTB layout; return their names.

    ``name`` defaults to the folder holding ``img/``; ``targets`` (e.g. ['1']) picks the targets of a
    multi-target zip (default: all). Existing sequence folders are kept unless ``force``.
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack.", dir=out_dir))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                _safe_extract(zf, tmp)
        except zipfile.BadZipFile:
            raise MetaRTTError(f"{zip_path} is not a zip file") from None
        img_dirs = [p for p in tmp.rglob("*") if p.is_dir() and p.name.lower() == "img"
                    and not _is_junk(p, tmp)]
        img_dirs = [p for p in img_dirs if any(_GT_RE.match(q.name) for q in p.parent.iterdir())]
        if len(img_dirs) != 1:
            raise MetaRTTError(f"{zip_path} must hold exactly one sequence folder with img/ and "
                               f"groundtruth_rect*.txt, found {len(img_dirs)}")
        img_dir = img_dirs[0]
        base = name or img_dir.parent.name
        frames = sorted((p for p in img_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                         and not p.name.startswith(".")), key=lambda p: p.name)
        if not frames:
            raise MetaRTTError(f"{zip_path}: {img_dir.relative_to(tmp)} holds no frames")
        gts: dict[str | None, Path] = {}
        for q in sorted(img_dir.parent.iterdir()):
            m = _GT_RE.match(q.name)
            if m and q.is_file():
                gts.setdefault(m.group(1), q)
        if None in gts and len(gts) > 1:
            del gts[None]  # a combined file beside the per-target ones: use the per-target files
        if targets:
            missing = [t for t in targets if t not in gts]
            if missing:
                raise MetaRTTError(f"{zip_path} has no ground truth for target(s) {', '.join(missing)} "
                                   f"(has: {', '.join(sorted(k for k in gts if k)) or 'one target'})")
            gts = {t: gts[t] for t in targets}
        made = []
        for target, gt_path in gts.items():
            seq_name = f"{base}-{target}" if target else base
            out = out_dir / seq_name
            if out.exists() and not force:
                print(f"skip {seq_name}: {out} exists (use --force)")
                continue
            gt = read_otb_groundtruth(gt_path)
            sel = _select_frames(frames, len(gt), seq_name, base)
            stage = tmp / f"__out_{seq_name}"
            (stage / "img").mkdir(parents=True)
            for p in sel:
                try:
                    os.link(p, stage / "img" / p.name)
                except OSError:
                    shutil.copy2(p, stage / "img" / p.name)
            write_otb_groundtruth(stage / "groundtruth_rect.txt", gt)
            if out.exists():
                shutil.rmtree(out)
            os.replace(stage, out)
            made.append(seq_name)
        return made
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_otb(names: list[str], out: str | Path, url_template: str = URL_TEMPLATE,
                 keep_zips: bool = False, force: bool = False) -> list[str]:
    """Fetch and unpack the OTB sequences ``names`` into ``out``; rewrite ``out/sequences.json``."""
    out = Path(out)
    groups: dict[str, list[str]] = {}
    for n in names:
        base, target = split_name(n)
        groups.setdefault(base, [])
        if target:
            groups[base].append(target)
        elif base in MULTI_TARGET:
            groups[base] = []  # the bare name asks for every target
    made = []
    for base, targets in groups.items():
        wanted = [f"{base}-{t}" for t in targets] if targets else [base]
        if not force and all((out / w).is_dir() for w in wanted):
            print(f"skip {base}: already in {out}")
            continue
        zip_path = out / ".zips" / f"{base}.zip"
        if not zip_path.is_file():
            url = url_template.format(name=base)
            print(f"fetching {url}")
            fetch(url, zip_path)
        made += unpack_otb_zip(zip_path, out, base, targets or None, force=force)
        if not keep_zips:
            zip_path.unlink()
    zips = out / ".zips"
    if zips.is_dir() and not any(zips.iterdir()):
        zips.rmdir()
    make_index(out, description="OTB-100 sequences downloaded with data_scripts/download_otb.py")
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", required=True, help="comma-separated OTB names, e.g. Basketball,Girl,Jogging-1")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--url-template", default=URL_TEMPLATE, help=f"default {URL_TEMPLATE}")
    ap.add_argument("--keep-zips", action="store_true", help="keep the zips in OUT/.zips")
    ap.add_argument("--force", action="store_true", help="replace sequences that already exist")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    if not names:
        ap.error("--names is empty")
    if "{name}" not in args.url_template:
        ap.error("--url-template must contain {name}")
    try:
        made = download_otb(names, args.out, args.url_template, args.keep_zips, args.force)
    except (MetaRTTError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(made)} sequence(s) to {args.out}: {', '.join(made) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
