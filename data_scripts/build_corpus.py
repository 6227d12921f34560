#!/usr/bin/env python
"""Build the extra public tracking videos of a corpus manifest into OTB folders, with provenance.

Usage: python data_scripts/build_corpus.py --repos CLONES OUT [--manifest data_scripts/corpus_manifest.json]
       [--repo-map map.json] [--names OTB_David,VOT_ball] [--reserved RESERVED.json | --no-reserved-check]
       [--existing DATA | --no-existing-check] [--allow-existing VOT_car1] [--link] [--force]

The manifest (default: the copy next to this script, same format as ``../shared/data/corpus_manifest.json``)
pins every video by repository, commit and paths. Clone each repository and check out the commit, e.g.
``git clone https://github.com/OWNER/NAME CLONES/OWNER+NAME && git -C CLONES/OWNER+NAME checkout COMMIT``.
A video's repository is looked up in ``--repo-map`` (JSON ``{"owner/name" or "owner/name@COMMIT": folder}``),
then as ``CLONES/owner+name@COMMIT``, ``CLONES/owner+name``, ``CLONES/owner/name``. A git clone at another
commit (or a bare git folder) is read at the pinned commit with ``git archive`` (one clone serves every commit
it holds); a plain folder (no ``.git``) is used as it is and its commit is recorded as not verified.

Each video becomes ``OUT/NAME/img/<source frame files>`` + ``OUT/NAME/groundtruth_rect.txt`` (1-based
``x,y,w,h``, commas) + ``OUT/NAME/provenance.json`` (repository, commit, paths, frame range, SHA-1 of every
frame, licence note, checks run), built in ``OUT/.NAME.partial`` and renamed into place; a finished folder is
skipped on the next run (``--force`` rebuilds), so an interrupted run resumes. ``OUT/sequences.json`` is
rewritten at the end. Manifest fields: ``gt_format`` ``xywh`` or ``polygon8`` (VOT corners -> upright box
``min(xs), min(ys), max(xs)-min(xs), max(ys)-min(ys)``, coordinates as-is, as for ``vot2015_bag``);
``frame_offset`` (frame files to skip), ``gt_line_offset`` (gt lines to skip); ``n_usable`` (frames that
have a gt line: the frames kept). The source is checked against ``n_frames``, ``n_gt_lines``,
``first_frame`` (the first frame kept) and ``first_gt`` (line 1 of the gt file) first.

Refusals (the video is skipped with its reason; never overridable for the reserved list):
- reserved: any frame file of the source folder whose SHA-1 is in ``RESERVED.json``'s ``frame_file_sha1``, or
  a base name (the file's ``name_rule``, applied to the manifest name and the repository folder name, also
  without a ``vot_``/``votNN_`` prefix) whose SHA-256 is in ``base_name_sha256``. Default file
  ``../shared/data/RESERVED.json`` (from the working folder or the checkout). Without one the script refuses to
  run unless ``--no-reserved-check``; a reserved file that is found is always applied.
- already present: a frame SHA-1 equal to a frame of ``--existing`` (default ``../shared/data``), the same
  repository + images path, or the same base name as an existing sequence (``--allow-existing NAME`` accepts a
  name-only match you have checked is a different video; it is recorded in the provenance).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

try:
    import metartt_lite  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metartt_lite.data.sequences import IMAGE_EXTS, looks_like_otb, write_otb_groundtruth  # noqa: E402
from metartt_lite.core.utils import MetaRTTError, atomic_write_json  # noqa: E402
from make_index import GT_FORMAT, sequence_entry  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_MANIFEST = HERE / "corpus_manifest.json"
_SEP = re.compile(r"[,\s;]+")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# RESERVED.json's name_rule: lowercase, drop one dataset prefix and a trailing _<digits> section suffix
_PREFIX = re.compile(r"^(uav123_10fps_|uav123_|dtb70_|uavdt_|otb_|tinytlp_|vot20\d\d_)")
_SUFFIX = re.compile(r"_\d+$")
# prefixes the rule does not list but this manifest and repositories use (VOT_ball, vot15_ball2): also stripped
_EXTRA_PREFIX = re.compile(r"^(vot\d*_)")


def _shared_default(*parts: str) -> Path | None:
    """``../shared/data/...`` from the working folder, else from the checkout; None if neither exists."""
    for base in (Path.cwd().parent, HERE.parents[1]):
        p = base.joinpath("shared", "data", *parts)
        if p.exists():
            return p.resolve()
    return None


def base_name(name: str) -> str:
    """RESERVED.json's rule: 'UAV123_10fps_car7_2' -> 'car7', 'OTB_Jogging-1' -> 'jogging-1'."""
    return _SUFFIX.sub("", _PREFIX.sub("", name.lower()))


def candidate_base_names(*names: str) -> set[str]:
    """Base names to check for a video known by ``names``: the rule, and the rule after a vot_/votNN_ prefix."""
    out = set()
    for n in names:
        if not n:
            continue
        out.add(base_name(n))
        out.add(base_name(_EXTRA_PREFIX.sub("", n.lower())))
    return {n for n in out if n}


def sha256_text(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def sha1_file(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (the order metartt_lite reads them in)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.name.startswith(".")), key=lambda p: p.name)


# --------------------------------------------------------------------------- reserved / existing data

class Reserved:
    """A validated reserved list: frame-file SHA-1s and base-name SHA-256s."""

    def __init__(self, path: Path, frame_sha1: set[str], name_sha256: set[str]) -> None:
        self.path, self.frame_sha1, self.name_sha256 = path, frame_sha1, name_sha256


def load_reserved(path: str | Path) -> Reserved:
    """Read and validate a RESERVED.json; any defect is an error (a broken list must not pass videos)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise MetaRTTError(f"cannot read reserved list {path}: {e}") from None
    if not isinstance(data, dict):
        raise MetaRTTError(f"reserved list {path} must be a JSON object")
    sets = {}
    for key, pat in (("frame_file_sha1", _HEX40), ("base_name_sha256", _HEX64)):
        vals = data.get(key)
        if not isinstance(vals, list) or not vals:
            raise MetaRTTError(f"reserved list {path} has no non-empty '{key}' list")
        bad = [v for v in vals if not isinstance(v, str) or not pat.match(v.lower())]
        if bad:
            raise MetaRTTError(f"reserved list {path}: '{key}' holds {len(bad)} malformed value(s), e.g. {bad[0]!r}")
        sets[key] = {v.lower() for v in vals}
    return Reserved(path, sets["frame_file_sha1"], sets["base_name_sha256"])


class Existing:
    """What the existing data holds: base names, frame SHA-1s and (repo, images path), each -> its sequence."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: dict[str, str] = {}
        self.frame_sha1: dict[str, str] = {}
        self.sources: dict[tuple[str, str], str] = {}


def load_existing(root: str | Path) -> Existing:
    """Names, frame SHA-1s and source paths of the sequences already in ``root`` (sequences.json or folders)."""
    root = Path(root)
    if not root.is_dir():
        raise MetaRTTError(f"existing data folder {root} does not exist")
    index = root / "sequences.json"
    entries: list[dict] = []
    if index.is_file():
        try:
            entries = json.loads(index.read_text())["sequences"]
            names = [e["name"] for e in entries]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise MetaRTTError(f"cannot read {index}: {e}") from None
    else:
        names = []
    names = sorted(set(names) | {p.name for p in root.iterdir() if p.is_dir() and looks_like_otb(p)})
    if not names:
        raise MetaRTTError(f"existing data folder {root} holds no sequences")
    ex = Existing(root)
    for n in names:
        for b in candidate_base_names(n):
            ex.names.setdefault(b, n)
        img = root / n / "img"
        if img.is_dir():
            for p in image_files(img):
                ex.frame_sha1.setdefault(sha1_file(p), n)
    for e in entries:
        repo, paths = e.get("source_repo"), e.get("path_in_repo")
        if isinstance(repo, str) and isinstance(paths, dict) and isinstance(paths.get("images"), str):
            ex.sources[(repo.lower(), paths["images"].strip("/"))] = e["name"]
    return ex


# --------------------------------------------------------------------------- sources

class Refused(Exception):
    """A video that must not be built (reserved, already present, or not what the manifest pins)."""


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=not binary)
    if r.returncode:
        err = r.stderr.decode(errors="replace") if binary else r.stderr
        raise MetaRTTError(f"git {' '.join(args[:2])} in {repo} failed: {err.strip().splitlines()[-1:] or ['?']}")
    return r.stdout


def find_clone(entry: dict, repos: Path | None, repo_map: dict[str, str]) -> Path:
    repo, commit = entry["repo"], entry["commit"]
    for key in (f"{repo}@{commit}", repo):
        if key in repo_map:
            p = Path(repo_map[key]).expanduser()
            if not p.is_dir():
                raise MetaRTTError(f"--repo-map gives {p} for {key}, which is not a folder")
            return p
    if repos is not None:
        owner, name = repo.split("/", 1)
        for p in (repos / f"{owner}+{name}@{commit}", repos / f"{owner}+{name}", repos / owner / name):
            if p.is_dir():
                return p
    where = f"{repos}/{repo.replace('/', '+')}" if repos is not None else "--repo-map"
    raise MetaRTTError(f"no clone of {repo} (looked for {where}[@{commit[:7]}]): "
                       f"git clone https://github.com/{repo} && git checkout {commit}")


def source_folder(entry: dict, clone: Path, scratch: Path) -> tuple[Path, bool]:
    """Folder holding the pinned paths at the pinned commit, and whether the commit was verified.

    A git clone at the pinned commit with those paths unmodified is read in place; a clone at another commit
    is read with ``git archive COMMIT`` into ``scratch``; a plain folder is used as it is (not verified).
    """
    commit = entry["commit"]
    paths = [entry["images"].strip("/"), entry["groundtruth"].strip("/")]
    bare = (clone / "HEAD").is_file() and (clone / "objects").is_dir() and not (clone / ".git").exists()
    if not (clone / ".git").exists() and not bare:
        return clone, False
    head = _git(clone, "rev-parse", "HEAD").strip()
    if not bare and head == commit and not _git(clone, "status", "--porcelain", "--", *paths).strip():
        return clone, True
    try:
        _git(clone, "cat-file", "-e", f"{commit}^{{commit}}")
    except MetaRTTError:
        raise MetaRTTError(f"clone {clone} (at {head[:7]}) does not hold commit {commit}: "
                           f"git -C {clone} fetch origin {commit}") from None
    data = _git(clone, "archive", "--format=tar", commit, "--", *paths, binary=True)
    out = scratch / f"{clone.name}@{commit}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        tf.extractall(out, filter="data") if hasattr(tarfile, "data_filter") else tf.extractall(out)
    return out, True


def _parse_line(line: str) -> list[float] | None:
    parts = [p for p in _SEP.split(line.strip()) if p]
    if not parts:
        return None
    return [float(p) for p in parts]


def to_box(vals: list[float] | None, fmt: str, where: str) -> list[float]:
    """One gt line as an ``x,y,w,h`` box in the file's own (1-based) coordinates; NaN if missing."""
    if vals is None or not np.all(np.isfinite(vals)):
        return [np.nan] * 4
    if fmt == "polygon8" and len(vals) == 8:
        xs, ys = vals[0::2], vals[1::2]
        return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    if len(vals) == 4:  # xywh, or a VOT rectangle line inside a polygon file
        return list(vals)
    raise Refused(f"{where} has {len(vals)} values, expected {'8 (polygon) or ' if fmt == 'polygon8' else ''}4")


def read_source(entry: dict, src: Path) -> tuple[list[Path], list[Path], np.ndarray]:
    """(all source frames, kept frames, (n, 4) boxes in 1-based file coordinates), checked against the entry."""
    name, fmt = entry["name"], entry.get("gt_format", "xywh")
    if fmt not in ("xywh", "polygon8"):
        raise MetaRTTError(f"{name}: unknown gt_format {fmt!r} (xywh or polygon8)")
    img, gt_path = src / entry["images"].strip("/"), src / entry["groundtruth"].strip("/")
    if not img.is_dir():
        raise MetaRTTError(f"{name}: {entry['images']} is not in {src}")
    if not gt_path.is_file():
        raise MetaRTTError(f"{name}: {entry['groundtruth']} is not in {src}")
    frames = image_files(img)
    lines = gt_path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for key, have in (("n_frames", len(frames)), ("n_gt_lines", len(lines))):
        if key in entry and entry[key] != have:
            raise Refused(f"source differs from the manifest: {have} {key[2:].replace('_', ' ')}, "
                          f"manifest says {entry[key]}")
    f0, g0 = int(entry.get("frame_offset", 0)), int(entry.get("gt_line_offset", 0))
    n = int(entry.get("n_usable", min(len(frames) - f0, len(lines) - g0)))
    if n < 1 or f0 + n > len(frames) or g0 + n > len(lines):
        raise Refused(f"n_usable={n} with frame_offset={f0}, gt_line_offset={g0} needs more than the "
                      f"{len(frames)} frames / {len(lines)} gt lines of the source")
    kept = frames[f0:f0 + n]
    if entry.get("first_frame") and kept[0].name != Path(entry["first_frame"]).name:
        raise Refused(f"first kept frame is {kept[0].name}, manifest says {Path(entry['first_frame']).name}")
    try:
        vals = [_parse_line(ln) for ln in lines[g0:g0 + n]]
    except ValueError:
        raise Refused(f"{entry['groundtruth']} has a non-numeric line") from None
    boxes = np.array([to_box(v, fmt, f"line {g0 + i + 1} of {entry['groundtruth']}") for i, v in enumerate(vals)],
                     dtype=np.float64).reshape(-1, 4)
    if entry.get("first_gt") is not None:  # the manifest's first_gt is line 1 of the file (before any offset)
        want, have = _parse_line(str(entry["first_gt"])), _parse_line(lines[0])
        if have is None or len(have) != len(want) or not np.allclose(have, want):
            raise Refused(f"gt line 1 is {lines[0].strip()!r}, manifest first_gt is {entry['first_gt']!r}")
    if not np.all(np.isfinite(boxes[0])) or boxes[0, 2] <= 0 or boxes[0, 3] <= 0:
        raise Refused(f"the first kept frame has no usable box ({lines[g0].strip()!r})")
    return frames, kept, boxes


def _licence(clone: Path) -> str | None:
    for p in sorted(clone.glob("*")):
        if p.is_file() and re.match(r"^(licen[cs]e|copying)", p.name.lower()):
            text = [ln.strip() for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
            return f"{p.name}: {text[0][:120]}" if text else p.name
    return None


# --------------------------------------------------------------------------- build

def check_video(entry: dict, sha1s: list[str], reserved: Reserved | None, existing: Existing | None,
                allow_existing: set[str]) -> list[str]:
    """Raise Refused if the video is reserved or already present; return notes on accepted name matches."""
    imgdir = Path(entry["images"].strip("/"))
    folder = imgdir.parent.name if imgdir.name.lower() in ("img", "imgs", "images") else imgdir.name
    names = candidate_base_names(entry["name"], folder)
    if reserved is not None:
        hits = [s for s in sha1s if s in reserved.frame_sha1]
        if hits:
            raise Refused(f"reserved: {len(hits)} of its {len(sha1s)} frame files have a SHA-1 in "
                          f"{reserved.path.name} (e.g. {hits[0][:12]})")
        hit_names = sorted(b for b in names if sha256_text(b) in reserved.name_sha256)
        if hit_names:
            raise Refused(f"reserved: base name {hit_names[0]!r} has its SHA-256 in {reserved.path.name}")
    notes = []
    if existing is not None:
        hits = [s for s in sha1s if s in existing.frame_sha1]
        if hits:
            raise Refused(f"already present: {len(hits)} of its frame files are byte-identical to frames of "
                          f"{existing.frame_sha1[hits[0]]} in {existing.root}")
        src = (entry["repo"].lower(), entry["images"].strip("/"))
        if src in existing.sources:
            raise Refused(f"already present: {existing.sources[src]} in {existing.root} comes from the same "
                          f"{entry['repo']}:{entry['images']}")
        same = sorted(b for b in names if b in existing.names)
        if same:
            if entry["name"] not in allow_existing:
                raise Refused(f"already present: base name {same[0]!r} = existing {existing.names[same[0]]} in "
                              f"{existing.root} (if checked to be another video: --allow-existing {entry['name']})")
            notes.append(f"base name {same[0]!r} also names existing {existing.names[same[0]]}; accepted as a "
                         f"different video by --allow-existing")
    return notes


def build_video(entry: dict, out: Path, src: Path, clone: Path, verified: bool, reserved: Reserved | None,
                existing: Existing | None, allow_existing: set[str], link: bool = False) -> dict:
    """Check and write one video into ``out/NAME``; return its provenance (raises Refused / MetaRTTError)."""
    name = entry["name"]
    frames, kept, boxes = read_source(entry, src)
    sha1s = [sha1_file(p) for p in frames]
    notes = check_video(entry, sha1s, reserved, existing, allow_existing)
    tmp = out / f".{name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "img").mkdir(parents=True)
    for p in kept:
        if link:
            os.symlink(p.resolve(), tmp / "img" / p.name)
        else:
            shutil.copyfile(p, tmp / "img" / p.name)
    write_otb_groundtruth(tmp / "groundtruth_rect.txt", boxes - np.array([1.0, 1.0, 0.0, 0.0]))
    f0, g0 = int(entry.get("frame_offset", 0)), int(entry.get("gt_line_offset", 0))
    by_name = dict(zip((p.name for p in frames), sha1s))
    conv = "polygon8 -> upright box min/max of the corners, coordinates as-is" \
        if entry.get("gt_format") == "polygon8" else "x,y,w,h as in the source, rewritten with commas"
    prov = {
        "name": name, "dataset": entry.get("dataset"), "source_repo": entry["repo"], "commit": entry["commit"],
        "commit_verified": verified,
        "commit_check": "git checkout / git archive at the pinned commit" if verified else
                        "plain folder: the commit was not checked (the files matched the manifest's counts, "
                        "first frame name and first gt line)",
        "path_in_repo": {"images": entry["images"], "groundtruth": entry["groundtruth"]},
        "n_frames": len(kept), "n_source_frames": len(frames), "n_source_gt_lines": entry.get("n_gt_lines"),
        "frame_range_in_repo": [kept[0].name, kept[-1].name], "frame_offset": f0, "gt_line_offset": g0,
        "gt_lines_used": [g0 + 1, g0 + len(kept)], "gt_format_source": entry.get("gt_format", "xywh"),
        "gt_conversion": conv,
        "licence_note": entry.get("licence_note"), "repo_licence_file": _licence(clone),
        "note": entry.get("note"), "checks": {
            "reserved": str(reserved.path) if reserved is not None else "skipped (--no-reserved-check)",
            "existing": str(existing.root) if existing is not None else "skipped (--no-existing-check)",
            "accepted_matches": notes},
        "frame_sha1": {p.name: by_name[p.name] for p in kept},
    }
    atomic_write_json(tmp / "provenance.json", prov)
    old = out / f".{name}.old"
    if (out / name).exists():  # --force: the old folder goes only once the new one is complete
        if old.exists():
            shutil.rmtree(old)
        os.replace(out / name, old)
    os.replace(tmp, out / name)
    if old.exists():
        shutil.rmtree(old)
    return prov


def write_index(out: Path) -> dict:
    """``out/sequences.json`` for every OTB folder in ``out`` (make_index's entries + their provenance)."""
    entries = []
    for f in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and looks_like_otb(p)):
        e = sequence_entry(f)
        pp = f / "provenance.json"
        if pp.is_file():
            prov = json.loads(pp.read_text())
            e.update({k: prov.get(k) for k in ("dataset", "source_repo", "path_in_repo", "commit",
                                                "commit_verified", "frame_range_in_repo", "frame_offset",
                                                "gt_line_offset", "gt_conversion", "licence_note", "note")})
        entries.append(e)
    index = {"description": "Public tracking videos built by data_scripts/build_corpus.py from pinned "
                            "repository commits into OTB layout (frames byte for byte; provenance.json in "
                            "each folder)",
             "n_sequences": len(entries), "total_frames": sum(e["n_frames"] for e in entries),
             "gt_format": GT_FORMAT, "sequences": entries}
    atomic_write_json(out / "sequences.json", index)
    return index


def load_manifest(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        entries = data["entries"]
        for e in entries:
            for k in ("name", "repo", "commit", "images", "groundtruth"):
                if not isinstance(e.get(k), str) or not e[k]:
                    raise KeyError(f"an entry lacks '{k}'")
            if "/" not in e["repo"] or not _HEX40.match(e["commit"]):
                raise KeyError(f"{e['name']}: repo must be owner/name and commit 40 hex digits")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MetaRTTError(f"bad manifest {path}: {e}") from None
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise MetaRTTError(f"bad manifest {path}: duplicate names")
    return entries


def build_corpus(out: str | Path, repos: str | Path | None = None, manifest: str | Path = DEFAULT_MANIFEST,
                 repo_map: dict[str, str] | None = None, names: list[str] | None = None,
                 reserved: str | Path | None = None, no_reserved_check: bool = False,
                 existing: str | Path | None = None, no_existing_check: bool = False,
                 allow_existing: list[str] | None = None, link: bool = False, force: bool = False,
                 log=print) -> dict:
    """Build the manifest's videos into ``out``; return {'built', 'done', 'refused', 'failed'} (name -> text)."""
    entries = load_manifest(manifest)
    if names is not None:
        unknown = [n for n in names if n not in {e["name"] for e in entries}]
        if unknown:
            raise MetaRTTError(f"--names: {', '.join(unknown)} not in {manifest}")
        entries = [e for e in entries if e["name"] in names]
    if reserved is None:
        reserved = _shared_default("RESERVED.json")
    if reserved is not None:
        if no_reserved_check:
            log(f"note: --no-reserved-check ignored: the reserved list {reserved} exists and is always applied")
        res = load_reserved(reserved)
    elif no_reserved_check:
        log("WARNING: no reserved list: videos reserved for independent evaluation are not filtered out")
        res = None
    else:
        raise MetaRTTError("no reserved list (../shared/data/RESERVED.json not found): pass --reserved PATH, or "
                           "--no-reserved-check to build without filtering reserved videos")
    if existing is None and not no_existing_check:
        existing = _shared_default()
        if existing is None:
            raise MetaRTTError("no existing data (../shared/data not found): pass --existing DIR, or "
                               "--no-existing-check to build without skipping videos already there")
    ex = load_existing(existing) if existing is not None else None
    repos = Path(repos).expanduser() if repos is not None else None
    if repos is not None and not repos.is_dir():
        raise MetaRTTError(f"--repos {repos} is not a folder")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = out / ".src"
    result: dict[str, dict[str, str]] = {"built": {}, "done": {}, "refused": {}, "failed": {}}
    allow = set(allow_existing or [])
    try:
        for e in entries:
            name = e["name"]
            dst = out / name
            if dst.exists() and not force:
                result["done"][name] = "exists"
                log(f"skip {name}: {dst} exists (use --force to rebuild)")
                continue
            try:
                clone = find_clone(e, repos, repo_map or {})
                src, verified = source_folder(e, clone, scratch)
                prov = build_video(e, out, src, clone, verified, res, ex, allow, link)
            except Refused as r:
                result["refused"][name] = str(r)
                log(f"refuse {name}: {r}")
                continue
            except (MetaRTTError, OSError) as err:
                result["failed"][name] = str(err)
                log(f"error {name}: {err}")
                continue
            result["built"][name] = f"{prov['n_frames']} frames"
            log(f"built {name}: {prov['n_frames']} frames from {e['repo']}@{e['commit'][:7]}"
                + ("" if verified else " (plain folder: commit not verified)"))
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)
    if any(p.is_dir() and looks_like_otb(p) for p in out.iterdir()):
        index = write_index(out)
        result["index"] = {"n_sequences": index["n_sequences"], "total_frames": index["total_frames"]}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output folder (OTB layout + sequences.json)")
    ap.add_argument("--repos", default=None, help="folder of clones: owner+name[@COMMIT]/ or owner/name/")
    ap.add_argument("--repo-map", default=None, help='JSON file {"owner/name[@COMMIT]": "clone folder"}')
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="corpus manifest (default: %(default)s)")
    ap.add_argument("--names", default=None, help="comma-separated manifest names to build (default: all)")
    ap.add_argument("--reserved", default=None, help="RESERVED.json (default ../shared/data/RESERVED.json)")
    ap.add_argument("--no-reserved-check", action="store_true",
                    help="allow building when no reserved list exists (one that exists is still applied)")
    ap.add_argument("--existing", default=None, help="data already held, with sequences.json (default ../shared/data)")
    ap.add_argument("--no-existing-check", action="store_true", help="do not skip videos already in --existing")
    ap.add_argument("--allow-existing", default=None,
                    help="comma-separated names whose base-name match with existing data you checked is another video")
    ap.add_argument("--link", action="store_true", help="symlink frames instead of copying them")
    ap.add_argument("--force", action="store_true", help="rebuild videos whose folder already exists")
    args = ap.parse_args(argv)
    if args.repos is None and args.repo_map is None:
        ap.error("give --repos and/or --repo-map")
    if args.no_existing_check and args.existing:
        ap.error("--existing and --no-existing-check exclude each other")
    split = (lambda s: [n.strip() for n in s.split(",") if n.strip()] if s else None)
    try:
        repo_map = None
        if args.repo_map:
            try:
                repo_map = json.loads(Path(args.repo_map).read_text())
            except (OSError, ValueError) as e:
                raise MetaRTTError(f"cannot read --repo-map {args.repo_map}: {e}") from None
        res = build_corpus(args.out, args.repos, args.manifest, repo_map, split(args.names), args.reserved,
                           args.no_reserved_check, args.existing, args.no_existing_check,
                           split(args.allow_existing), args.link, args.force)
    except MetaRTTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    idx = res.get("index", {"n_sequences": 0, "total_frames": 0})
    print(f"built {len(res['built'])}, already there {len(res['done'])}, refused {len(res['refused'])}, "
          f"failed {len(res['failed'])}; {args.out} holds {idx['n_sequences']} sequences "
          f"({idx['total_frames']} frames)")
    return 1 if res["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
