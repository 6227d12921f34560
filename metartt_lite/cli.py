"""Command-line interface: ``python -m metartt_lite <command>`` (also installed as ``metartt-lite``).

Commands defined here:

* ``demo``     — make an embedded sample video, track it, print AUC / precision / FPS, write an annotated
  GIF and ``results.json`` (runs offline, without ``../shared``).
* ``track``    — track one sequence (OTB folder, GOT-10k folder, folder of frames or video file); boxes as
  JSON / CSV / OTB text, an H.264 mp4 at the source's frame rate.
* ``evaluate`` — OPE evaluation of several trackers on a data split, with one or more seeds; table +
  ``results.json`` + plots.
* ``compare``  — paired comparison of two trackers (or all against a baseline) from a ``results.json``:
  mean difference, bootstrap CI over sequences, sequences won.
* ``pick-box`` — the first frame of a video with a labelled pixel grid (PNG), to read ``--first-box`` off.
* ``list``     — tracker names, sample presets and, when a data root is found, its sequences and splits.

Other modules add commands through :data:`COMMANDS`: each entry ``(name, module_path)`` names a module
with ``add_parser(subparsers)`` that adds a sub-parser and sets its ``func`` default (a function taking
the parsed ``argparse.Namespace`` and returning an exit code or ``None``). A module that cannot be
imported (missing or broken) costs only its own command, with a one-line warning on stderr.

Errors caused by the user's input (:class:`~metartt_lite.utils.MetaRTTError`, missing files) become
one line ``error: <message>`` on stderr and exit code 2; Ctrl-C exits with 130. Every file is written
atomically (temporary file + rename), so a failing run never leaves a half-written or truncated output
behind and never damages an earlier ``results.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .core.boxes import check_box_sanity, parse_box, validate_box
from .evaluation.compare import compare_file, compare_markdown, write_comparison
from .data.sequences import (SequenceView, data_root, list_sequences, load_sequence, load_split, prefetch,
                             read_splits)
from .core.drawing import GT_COLOR, PRED_COLOR, TEXT_COLOR, paint_boxes
from .evaluation.ope import evaluate, format_table
from .track.registry import list_trackers, make_tracker
from .data.layouts import write_got10k_val, write_vot_workspace
from .data.samples import list_presets, make_sample
from .data.video import (BOX_FORMATS, DEFAULT_FPS, first_frame, format_from_path, source_fps, write_boxes, write_first_frame_grid,
                    write_h264)
from .core.threads import THREADS_ENV, configure_threads, resolve_threads
from .core.utils import (MetaRTTError, add_device_argument, add_threads_argument, atomic_write, atomic_write_json, fmt_value as _fmt,
                    git_commit, parse_device, parse_seeds, seed_everything)
from .core.utils import check_output_dir as _check_output_dir

__all__ = ["COMMANDS", "main", "build_parser", "default_tracker", "write_annotated_video",
           "annotate_frame", "DEFAULT_TRACKERS"]

PROG = "metartt-lite"

# Sub-commands provided by other modules, imported when the parser is built; one that cannot be
# imported is skipped with a warning.
# (The name is a label for messages; the sub-command's name is whatever its add_parser registers.)
COMMANDS: list[tuple[str, str]] = [
    ("pretrain", "metartt_lite.train.pretrain"),
    ("meta-train", "metartt_lite.train.meta"),
    ("nano-meta-train", "metartt_lite.train.nano_meta"),
    ("prune-train", "metartt_lite.train.prune"),
    ("reproduce", "metartt_lite.evaluation.reproduce"),
]

DEFAULT_TRACKERS = "metartt,metartt-prune,rtmdnet,rtmdnet-k5,csrt,kcf,mil,nanotrack"
FALLBACK_TRACKER = "rtmdnet-k5-tuned"
VIDEO_OUT_EXTS = (".mp4", ".gif")
DEMO_GIF_MAX_BYTES = 2_000_000


# ------------------------------------------------------------------------------------------ helpers

def _err(msg: str) -> None:
    print(f"error: {' '.join(str(msg).split())}", file=sys.stderr, flush=True)


def default_tracker() -> str:
    """``metartt`` when that preset is registered, else ``rtmdnet-k5-tuned`` (resolved at run time)."""
    return "metartt" if "metartt" in list_trackers() else FALLBACK_TRACKER


def _check_tracker_names(names: Iterable[str]) -> list[str]:
    """Validate every name against ``registry.list_trackers()`` before anything runs."""
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise MetaRTTError("no tracker given")
    known = list_trackers()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MetaRTTError(f"unknown tracker(s) {', '.join(repr(n) for n in unknown)}; "
                           f"known: {', '.join(known)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise MetaRTTError(f"tracker(s) listed twice: {', '.join(dup)}")
    return names


def _check_checkpoint(path: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists():
        raise MetaRTTError(f"checkpoint {p} does not exist")
    if not p.is_file():
        raise MetaRTTError(f"checkpoint {p} is not a file")
    return p


def _check_output_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        raise MetaRTTError(f"{what} {p} is a folder; give a file name")
    if p.parent.exists() and not p.parent.is_dir():
        raise MetaRTTError(f"{what} {p}: {p.parent} is not a folder")
    return p


def _check_video_out(path: str | None) -> Path | None:
    if path is None:
        return None
    p = _check_output_file(path, "--video-out")
    if p.suffix.lower() not in VIDEO_OUT_EXTS:
        raise MetaRTTError(f"--video-out {p}: unsupported extension {p.suffix!r}; use .mp4 or .gif")
    return p


def _build_trackers(names: list[str], checkpoint: Path | None, seed: int) -> dict[str, Any]:
    """Make every tracker up front, so a bad checkpoint fails before any tracking starts."""
    return {n: make_tracker(n, checkpoint=checkpoint, seed=seed) for n in names}


def _build_single(requested: str | None, checkpoint: Path | None, seed: int) -> tuple[str, Any]:
    """The tracker of ``demo`` / ``track``: ``requested``, or the default one. When the default is
    ``metartt`` but it cannot be built (its weights deleted or unreadable) and no checkpoint was
    given, fall back to ``rtmdnet-k5-tuned`` with a warning, so the demo works out of the box."""
    name = _check_tracker_names([requested or default_tracker()])[0]
    try:
        return name, _build_trackers([name], checkpoint, seed)[name]
    except MetaRTTError as e:
        if requested is not None or checkpoint is not None or name == FALLBACK_TRACKER:
            raise
        print(f"warning: default tracker {name} unavailable ({' '.join(str(e).split())}); "
              f"using {FALLBACK_TRACKER}", file=sys.stderr)
        return FALLBACK_TRACKER, _build_trackers([FALLBACK_TRACKER], None, seed)[FALLBACK_TRACKER]


def _show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only on an interactive terminal (logs and captured stderr stay clean)."""
    if getattr(args, "quiet", False):
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def _boxes(values: Sequence) -> np.ndarray:
    """JSON boxes (None for non-finite) back to an (N, 4) float array."""
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=np.float64).reshape(-1, 4)


def _run_config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
           if k not in ("func", "quiet") and not callable(v)}
    cfg.update(extra)
    cfg["git_commit"] = git_commit()
    return cfg


def _track_one(tname: str, tracker: Any, view: SequenceView, config: dict, show_progress: bool) -> dict:
    """One tracker on one sequence through ``evaluation.evaluate`` (the same code path as ``evaluate``)."""

    with tqdm(total=len(view), desc=f"{tname}/{view.name}", unit="frame", disable=not show_progress) as bar:
        view.bar = bar
        try:
            # no pre-decoding: the frames stream in as tracked (a prefetch thread decodes ahead, see
            # cmd_track), so decoding overlaps tracking and fps_e2e is what the user waits
            return evaluate([tname], [view], lambda _n, _s: tracker, out_dir=None, progress=False, config=config,
                            max_decoded_bytes=0)
        finally:
            view.bar = None


def _print_summary(results: dict, tname: str, seq_name: str, has_gt: bool) -> None:
    r = results["trackers"][tname]
    s = r["sequences"][seq_name]
    print(f"tracker {tname} on {seq_name} ({s['n_frames']} frames)")
    if has_gt:
        print(f"AUC {_fmt(s['auc'])}  precision@20px {_fmt(s['precision'])}")
    else:
        print("no ground truth after the first frame: AUC and precision not computed")
    print(f"FPS {_fmt(s['fps'], '.1f')} (with init {_fmt(s['fps_with_init'], '.1f')}, "
          f"init {_fmt(s['init_time'], '.2f')} s)")


# ------------------------------------------------------------------------------------ annotated video

def annotate_frame(frame: np.ndarray, gt: np.ndarray | None, pred: np.ndarray | None,
                   text: str | None = None) -> np.ndarray:
    """A copy of an RGB frame with the ground-truth box (green) and the prediction (red) drawn on it."""
    H, W = np.asarray(frame).shape[:2]
    thick = max(1, int(round(min(W, H) / 240)))
    img = paint_boxes(frame, [(gt, GT_COLOR, thick), (pred, PRED_COLOR, thick)])
    if text:
        scale = 0.4 * thick
        org = (4, int(12 * thick) + 2)
        # drawn through binary masks: exactly two colours (OpenCV may anti-alias text, and stray
        # colours would defeat the GIF palette)
        for color, t in (((0, 0, 0), thick + 2), (TEXT_COLOR, thick)):
            mask = np.zeros((H, W), np.uint8)
            cv2.putText(mask, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, t, cv2.LINE_8)
            img[mask >= 128] = color
    return img


def _gif_palette(frames: list[np.ndarray], colors: int):
    """A global PIL palette image: ``colors - 4`` colours fitted to a few frames + the box/text colours."""
    from PIL import Image
    idx = np.linspace(0, len(frames) - 1, min(len(frames), 8)).astype(int)
    montage = np.concatenate([frames[i] for i in idx], axis=0)
    q = Image.fromarray(montage).quantize(colors=colors - 4, method=Image.Quantize.MEDIANCUT)
    pal = q.getpalette()[: 3 * (colors - 4)]
    pal += [*GT_COLOR, *PRED_COLOR, *TEXT_COLOR, 0, 0, 0]
    img = Image.new("P", (1, 1))
    img.putpalette(pal + [0] * (768 - len(pal)))
    return img


def _encode_gif(frames: list[np.ndarray], overlays: list[Callable[[np.ndarray], np.ndarray]], fps: float,
                colors: int, still: int) -> bytes:
    """GIF bytes: one global palette without dithering, and pixels that changed by at most ``still``
    grey levels since the previous frame kept as they were (sensor noise would otherwise defeat the
    GIF's compression and its frame differencing); the overlays (boxes) are drawn afterwards."""
    import imageio.v3 as iio
    from PIL import Image
    pal = _gif_palette(frames, colors)
    out, prev = [], None
    for f, draw in zip(frames, overlays):
        f = np.ascontiguousarray(f)
        keep = None
        if prev is not None and prev.shape == f.shape:
            keep = np.abs(f.astype(np.int16) - prev.astype(np.int16)).max(axis=-1) <= still
            f = np.where(keep[..., None], prev, f)
        q = np.asarray(Image.fromarray(f).quantize(palette=pal, dither=Image.Dither.NONE).convert("RGB"))
        if keep is not None:
            q = np.where(keep[..., None], prev, q)
        prev = q
        out.append(draw(q))
    buf = io.BytesIO()
    iio.imwrite(buf, np.stack(out), extension=".gif", plugin="pillow",
                duration=int(round(1000.0 / max(fps, 1e-3))), loop=0)
    return buf.getvalue()


def write_annotated_video(path: str | os.PathLike, frames: Iterable[np.ndarray], groundtruth: np.ndarray | None,
                          boxes: np.ndarray, fps: float = 20.0, label: str | None = None,
                          max_bytes: int | None = None, progress: Any = None) -> Path:
    """Write frames with ground truth (green) and predicted boxes (red), atomically.

    ``.mp4``: H.264 (:func:`metartt_lite.video.write_h264`), streamed; ``progress`` (a tqdm bar) advances
    per frame. ``.gif``: imageio (Pillow), every frame at the
    video's size, small palette; with ``max_bytes`` the palette and the still-pixel threshold are
    tightened until the file fits (or the strongest setting is reached).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in VIDEO_OUT_EXTS:
        raise MetaRTTError(f"cannot write video {path}: unsupported extension {ext!r}; use .mp4 or .gif")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    gt = None if groundtruth is None else np.asarray(groundtruth, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)

    def text(i: int) -> str | None:
        # a frame counter only in mp4: in a GIF a changing corner would widen every frame's delta box
        if ext == ".gif":
            return label
        return f"{i + 1}/{n}" + (f" {label}" if label else "")

    def _w(tmp: str) -> None:
        real = tmp + ext  # the writers pick the container from the file extension
        try:
            if ext == ".gif":
                raw = []
                for i, f in enumerate(frames):
                    if i >= n:
                        break
                    raw.append(np.asarray(f, dtype=np.uint8))
                if not raw:
                    raise MetaRTTError(f"no frames to write to {path}")
                overlays = [lambda q, i=i: annotate_frame(q, None if gt is None else gt[i], boxes[i], text(i))
                            for i in range(len(raw))]
                data = b""
                for colors, still in ((128, 8), (64, 12), (64, 20), (32, 28)):
                    data = _encode_gif(raw, overlays, fps, colors, still)
                    if max_bytes is None or len(data) <= max_bytes:
                        break
                with open(real, "wb") as fh:
                    fh.write(data)
            else:  # H.264 through imageio-ffmpeg's bundled ffmpeg: plays in browsers and JupyterLab
                annotated = (annotate_frame(f, None if gt is None else gt[i], boxes[i], text(i))
                             for i, f in zip(range(n), frames))
                write_h264(real, annotated, fps, progress=progress)
            os.replace(real, tmp)
        finally:
            if os.path.exists(real):
                os.unlink(real)
    return atomic_write(path, _w)


# ------------------------------------------------------------------------------------------ commands

def cmd_demo(args: argparse.Namespace) -> int:

    if args.tracker is not None:
        _check_tracker_names([args.tracker])
    checkpoint = _check_checkpoint(args.checkpoint)
    out_dir = _check_output_dir(args.out, "--out")
    seed_everything(args.seed)
    video = make_sample(args.preset, seed=args.seed, n_frames=args.frames)
    name = f"{args.preset}_seed{args.seed}"
    tname, tracker = _build_single(args.tracker, checkpoint, args.seed)
    view = SequenceView(name, video.frames, video.groundtruth, video.init_box)
    config = _run_config(args, command="demo", tracker=tname, sequence=name, n_frames=len(video),
                         frame_size=list(video.frame_size))
    results = _track_one(tname, tracker, view, config, _show_progress(args))
    boxes = _boxes(results["trackers"][tname]["sequences"][name]["boxes"])
    gif = write_annotated_video(out_dir / "demo.gif", video.frames, video.groundtruth, boxes, fps=15.0,
                                label=f"{tname} (red) / gt (green)", max_bytes=DEMO_GIF_MAX_BYTES)
    res = atomic_write_json(out_dir / "results.json", results)
    _print_summary(results, tname, name, has_gt=True)
    print(f"wrote {gif} and {res}")
    return 0


def cmd_track(args: argparse.Namespace) -> int:

    if args.tracker is not None:
        _check_tracker_names([args.tracker])
    checkpoint = _check_checkpoint(args.checkpoint)
    fmt = args.format or (format_from_path(args.out) if args.out else "json")
    out = _check_output_file(args.out or f"results.{'txt' if fmt == 'otb' else fmt}", "--out")
    video_out = _check_video_out(args.video_out)
    box = parse_box(args.box) if args.box is not None else None
    src = Path(args.seq).expanduser()
    if not src.exists():
        raise MetaRTTError(f"--seq {src} does not exist")
    seq = load_sequence(src, init_box=box, allow_short_gt=args.allow_short_gt)
    if len(seq) == 0:
        raise MetaRTTError(f"sequence {src} has no frames")
    if args.fps is not None and not (np.isfinite(args.fps) and args.fps > 0):
        raise MetaRTTError(f"--fps {args.fps} must be a positive number")
    fps = args.fps or source_fps(src) or DEFAULT_FPS  # the source's own rate, so the video plays in real time
    gt = np.asarray(seq.groundtruth, dtype=np.float64)
    has_gt = bool(len(gt) > 1 and np.all(np.isfinite(gt[1:]), axis=1).any())
    init_box = seq.init_box  # validated against the first frame
    check_box_sanity(init_box, seq.frame_size, strict=args.strict,
                     what="--first-box" if box is not None else f"first ground-truth box of {seq.name}")
    seed_everything(args.seed)
    tname, tracker = _build_single(args.tracker, checkpoint, args.seed)
    score_gt = gt if has_gt else np.full_like(gt, np.nan)  # no ground truth: metrics are None, not 0.95
    view = SequenceView(seq.name, lambda: prefetch(seq.frames()), score_gt, init_box)  # decode thread
    config = _run_config(args, command="track", tracker=tname, sequence=seq.name, source=str(src),
                         init_box=init_box.tolist(), has_groundtruth=has_gt, n_frames=len(seq), fps=fps)
    results = _track_one(tname, tracker, view, config, _show_progress(args))
    r = results["trackers"][tname]["sequences"][seq.name]
    if fmt == "json":
        atomic_write_json(out, results)
    else:
        write_boxes(out, _boxes(r["boxes"]), fmt, scores=[np.nan if v is None else v for v in r["scores"]],
                    success=r.get("success"))
    _print_summary(results, tname, seq.name, has_gt)
    print(f"wrote {out} ({fmt})")
    if video_out is not None:
        with tqdm(total=len(seq), desc=f"writing {video_out.name}", unit="frame",
                  disable=not _show_progress(args)) as bar:
            write_annotated_video(video_out, seq.frames(), gt, _boxes(r["boxes"]), fps=fps, label=tname,
                                  progress=bar)
        print(f"wrote {video_out} ({fps:.4g} fps{', H.264' if video_out.suffix.lower() == '.mp4' else ''})")
    return 0


def cmd_pick_box(args: argparse.Namespace) -> int:

    out = _check_output_file(args.out, "--out")
    if out.suffix.lower() != ".png":
        raise MetaRTTError(f"--out {out}: the grid image is a .png")
    src = Path(args.seq).expanduser()
    if not src.exists():
        raise MetaRTTError(f"--seq {src} does not exist")
    frame = first_frame(src)
    box = None
    if args.box is not None:
        box = validate_box(parse_box(args.box), (frame.shape[1], frame.shape[0]), what="--box")
        check_box_sanity(box, (frame.shape[1], frame.shape[0]), strict=args.strict, what="--box")
    write_first_frame_grid(out, frame, step=args.step, box=box)
    h, w = frame.shape[:2]
    print(f"wrote {out}: the first frame of {src} ({w}x{h} px) with a grid labelled in 0-based pixels"
          + ("" if box is None else ", --box drawn in red"))
    print(f"read the target's top-left corner (x, y) and its width and height off it, then run: "
          f"python -m metartt_lite track --seq {src} --first-box x,y,w,h --video-out tracked.mp4 --out boxes.csv")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:

    names = _check_tracker_names(args.trackers.split(","))
    seeds = parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
    checkpoint = _check_checkpoint(args.checkpoint)
    out_dir = _check_output_dir(args.out, "--out")
    root = data_root(args.data)
    split = _default_split(root) if args.split is None else (None if args.split in ("all", "") else args.split)
    seqs = load_split(root, split, args.sequences, allow_short_gt=args.allow_short_gt)
    for s in seqs:  # fail on a bad first box now, not after an hour of tracking
        s.init_box
    seed_everything(seeds[0])
    factory = functools.partial(_make_seeded, checkpoint=checkpoint)
    for n in names:  # a bad checkpoint fails before any tracking starts
        factory(n, seeds[0])
    config = _run_config(args, command="evaluate", data=str(root), split=split, trackers=names)
    show = _show_progress(args)
    results = evaluate(names, seqs, factory, out_dir=out_dir, progress=show, config=config,
                       seeds=seeds, workers=args.workers, resume=not args.restart,
                       log=None if show else (lambda line: print(line, file=sys.stderr, flush=True)))
    print(format_table(results))
    print(f"{len(seqs)} sequences, seeds {','.join(map(str, seeds))}, wall time {results['wall_time']:.0f} s; "
          f"{results['device']}")
    print(f"wrote {out_dir / 'results.json'}, success.png, precision.png, success.html")
    return 0


def _default_split(root: Path) -> str | None:
    """``evaluate`` without ``--split``: 'val' when ``root/splits.json`` has one, else every sequence
    (a folder of your own sequences needs no splits.json), said on stderr."""
    sp = root / "splits.json"
    splits = read_splits(root)
    if splits is not None:
        if isinstance(splits, dict) and "val" in splits:
            return "val"
        print(f"note: {sp} has no 'val' split: evaluating every sequence (--split NAME picks one)", file=sys.stderr)
    else:
        print(f"note: no splits.json in {root}: evaluating every sequence", file=sys.stderr)
    return None


def _make_seeded(name: str, seed: int, checkpoint: Path | None = None) -> Any:
    """``evaluate``'s tracker factory (module level, so ``--workers`` processes can receive it)."""
    return make_tracker(name, checkpoint=checkpoint, seed=seed)


def cmd_compare(args: argparse.Namespace) -> int:
    if args.baseline is None and (args.a is None or args.b is None):
        raise MetaRTTError("give two trackers A B, or --baseline B (optionally with one A)")
    if args.baseline is not None and args.b is not None:
        raise MetaRTTError("give either A B or --baseline B, not both")
    comps = compare_file(args.results, args.a, args.b, baseline=args.baseline, n_resamples=args.resamples,
                         level=args.level, seed=args.bootstrap_seed)
    print(compare_markdown(comps))
    if args.out is not None:
        js, md = write_comparison(comps, _check_output_file(args.out, "--out"), source=str(args.results))
        print(f"wrote {js}, {md}")
    return 0


def cmd_vot_workspace(args: argparse.Namespace) -> int:
    names = _check_tracker_names(args.trackers.split(","))
    seqs = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    ws = write_vot_workspace(args.src, args.ws, trackers=names, names=seqs)
    listed = (ws / "sequences" / "list.txt").read_text().split()
    print(f"wrote VOT workspace {ws}: {len(listed)} sequences ({', '.join(listed)}), trackers {', '.join(names)}")
    print(f"next: vot evaluate --workspace {ws} {names[0]}   then: vot analysis --workspace {ws} {names[0]}")
    return 0


def cmd_got10k_layout(args: argparse.Namespace) -> int:
    seqs = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    root = write_got10k_val(args.src, args.root, names=seqs)
    listed = (root / "val" / "list.txt").read_text().split()
    print(f"wrote GOT-10k val layout {root / 'val'}: {len(listed)} sequences ({', '.join(listed)})")
    print(f"next (Python): ExperimentGOT10k({str(root)!r}, subset='val').run(Got10kTracker('metartt')), then .report(...)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:


    print("trackers: " + ", ".join(list_trackers()))
    print("sample presets: " + ", ".join(list_presets()))
    try:
        root = data_root(args.data)
    except MetaRTTError as e:
        print(f"data: none found ({e})")
        return 0
    names = list_sequences(root)
    print(f"data root: {root}")
    print(f"sequences ({len(names)}): " + ", ".join(names))
    sp = root / "splits.json"
    splits = read_splits(root)
    if splits is not None:
        if not isinstance(splits, dict):
            raise MetaRTTError(f"{sp} must hold {{split: [sequence names]}}")
        for k, v in splits.items():
            v = list(v) if isinstance(v, (list, tuple)) else []
            print(f"split {k} ({len(v)}): " + ", ".join(map(str, v)))
    else:
        print("splits: none (no splits.json)")
    return 0


# ------------------------------------------------------------------------------------------- parser

def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_device_argument(p)


def _register_builtin(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("demo", help="track an embedded sample video and write an annotated GIF",
                       description="Generate a sample video (no data or network needed), track it, print "
                                   "AUC / precision / FPS and write demo.gif + results.json into --out.")
    p.add_argument("--preset", default="translation", choices=list_presets(), help="sample video preset")
    p.add_argument("--tracker", default=None,
                   help=f"tracker preset (default: metartt if available, else {FALLBACK_TRACKER})")
    p.add_argument("--checkpoint", default=None, help="weights for the tracker (default: the packaged ones)")
    p.add_argument("--seed", type=int, default=0, help="seed of the video and the tracker")
    p.add_argument("--frames", type=_positive_int, default=None, help="number of frames (default: the preset's 60)")
    p.add_argument("--out", default=os.path.join("outputs", "demo"), help="output folder (default ./outputs/demo)")
    _add_common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("track", help="track one sequence or your own video",
                       description="Track an OTB folder, a GOT-10k folder, a folder of frames or a video file. "
                                   "Prints AUC/precision when ground truth exists and FPS; writes the boxes "
                                   "(--format json|csv|otb) and optionally an annotated video (gt green, "
                                   "prediction red) at the source's frame rate: .mp4 is H.264 (plays in "
                                   "browsers and JupyterLab). No coordinates for the first box yet? Run "
                                   "'pick-box' first.")
    p.add_argument("--seq", required=True, help="OTB folder, GOT-10k folder, image folder or video file")
    p.add_argument("--box", "--first-box", dest="box", default=None,
                   help="the target's box in the first frame, x,y,w,h (0-based px; 'pick-box' writes the "
                        "first frame with a labelled grid to read it off); needed without ground truth, "
                        "overrides frame-1 ground truth (write --box=-3,4,50,60 for a negative x)")
    p.add_argument("--tracker", default=None,
                   help=f"tracker preset (default: metartt if available, else {FALLBACK_TRACKER})")
    p.add_argument("--checkpoint", default=None, help="weights for the tracker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="the boxes file (default ./results.json, ./results.csv or ./results.txt by --format)")
    p.add_argument("--format", choices=BOX_FORMATS, default=None,
                   help="json: the full results (boxes, scores, metrics, timings); csv: frame,x,y,w,h,score "
                        "(0-based px); otb: x,y,w,h per line, 1-based like groundtruth_rect.txt "
                        "(default: from --out's extension, .csv / .txt / else json)")
    p.add_argument("--video-out", default=None, help="annotated video: .mp4 (H.264) or .gif")
    p.add_argument("--fps", type=float, default=None,
                   help=f"frame rate of --video-out (default: the source video's, else {DEFAULT_FPS:g})")
    p.add_argument("--allow-short-gt", action="store_true",
                   help="an OTB ground truth shorter than the frames truncates the frames instead of failing")
    p.add_argument("--strict", action="store_true",
                   help="a first box that looks normalized, like x1,y1,x2,y2 corners or mostly off the frame "
                        "is an error instead of a warning")
    _add_common(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("pick-box", help="write the first frame with a labelled pixel grid, to read the first box off",
                       description="Writes the first frame of a video / folder as a PNG with a grid labelled in "
                                   "0-based pixel coordinates; read x,y,w,h of the target off it and pass them "
                                   "to 'track --first-box x,y,w,h'. (OpenCV's cv2.selectROI needs a GUI window, "
                                   "which the headless OpenCV build this package installs does not have; in "
                                   "JupyterLab, notebook 06 lets you draw the box instead.) With --box, the "
                                   "box is drawn in red so you can check it before tracking.")
    p.add_argument("--seq", required=True, help="video file, image folder, OTB or GOT-10k folder")
    p.add_argument("--out", default="first_frame.png", help="PNG to write (default ./first_frame.png)")
    p.add_argument("--step", type=_positive_int, default=None,
                   help="grid spacing in px (default: about 10 lines across, rounded to 5/10/20/25/50/100...)")
    p.add_argument("--box", default=None, help="a candidate box x,y,w,h to draw in red")
    add_threads_argument(p)
    p.add_argument("--strict", action="store_true",
                   help="a --box that looks normalized, like corners or mostly off the frame is an error")
    p.set_defaults(func=cmd_pick_box)

    p = sub.add_parser("evaluate", help="OPE evaluation of trackers on a data split",
                       description="Run every tracker on every selected sequence (OTB one-pass evaluation); "
                                   "print a table and write results.json, success/precision plots into --out.")
    p.add_argument("--data", default=None,
                   help="data folder (default: $METARTT_DATA, else ../shared/data)")
    p.add_argument("--split", default=None,
                   help="split from splits.json ('all': every sequence; default: val when splits.json has it, "
                        "else every sequence)")
    p.add_argument("--sequences", default=None, help="comma-separated sequence names (within the split)")
    p.add_argument("--trackers", default=DEFAULT_TRACKERS, help=f"comma-separated (default {DEFAULT_TRACKERS})")
    p.add_argument("--checkpoint", default=None, help="weights for our trackers")
    p.add_argument("--seed", type=int, default=0, help="the seed when --seeds is not given")
    p.add_argument("--seeds", default=None,
                   help="run every stochastic tracker once per seed, e.g. 0,1,2 or 0-2 (OpenCV's run once)")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="sequences in this many processes (torch threads are split between them; default 1)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--allow-short-gt", action="store_true",
                   help="an OTB ground truth shorter than the frames truncates the frames instead of failing")
    p.add_argument("--restart", action="store_true",
                   help="ignore finished runs that a killed run with the same arguments left in OUT/runs/ "
                        "(by default a rerun continues where it stopped)")
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="paired comparison of trackers in a results.json (bootstrap CI over sequences)",
                       description="Mean AUC / precision difference A - B over sequences (each sequence's values "
                                   "averaged over seeds first), a percentile bootstrap CI that resamples sequences, "
                                   "and the number of sequences won. Prints a markdown table; --out writes .json + .md.")
    p.add_argument("results", help="results.json written by evaluate or reproduce (or its folder)")
    p.add_argument("a", nargs="?", default=None, help="tracker A")
    p.add_argument("b", nargs="?", default=None, help="tracker B")
    p.add_argument("--baseline", default=None, help="compare every tracker (or only A) against this one")
    p.add_argument("--resamples", type=_positive_int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="NumPy seed of the bootstrap (default 0)")
    p.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("vot-workspace", help="write a VOT toolkit workspace from OTB folders",
                       description="Write a VOT toolkit workspace (config.yaml, stack.yaml, trackers.ini, "
                                   "sequences/ in VOT's layout) from OTB-style sequences (NAME/img/ + "
                                   "groundtruth_rect.txt), any names; then run 'vot evaluate --workspace WS "
                                   "TRACKER' and 'vot analysis --workspace WS TRACKER'.")
    p.add_argument("src", help="one OTB sequence folder, or a folder of them")
    p.add_argument("ws", help="the new workspace folder")
    p.add_argument("--trackers", default="metartt", help="trackers.ini entries, comma-separated (default metartt)")
    p.add_argument("--sequences", default=None, help="comma-separated subset of the sequences")
    p.set_defaults(func=cmd_vot_workspace)

    p = sub.add_parser("got10k-layout", help="write GOT-10k's val layout from OTB folders",
                       description="Write ROOT/val/ in GOT-10k's layout (frames, 1-based groundtruth.txt, "
                                   "meta_info.ini, absence/cover/cut_by_image labels, list.txt) from OTB-style "
                                   "sequences, so got10k's ExperimentGOT10k(ROOT, subset='val') runs and reports.")
    p.add_argument("src", help="one OTB sequence folder, or a folder of them")
    p.add_argument("root", help="the dataset root to write (ROOT/val/...)")
    p.add_argument("--sequences", default=None, help="comma-separated subset of the sequences")
    p.set_defaults(func=cmd_got10k_layout)

    p = sub.add_parser("list", help="list trackers, sample presets, sequences and splits")
    p.add_argument("--data", default=None, help="data folder (default: $METARTT_DATA, else ../shared/data)")
    p.set_defaults(func=cmd_list)


def _register_plugins(sub: argparse._SubParsersAction) -> None:
    """Import each ``COMMANDS`` module and let it add its sub-parser; one that cannot be imported is
    skipped with a warning (it must not take the other commands down with it)."""
    for name, module_path in COMMANDS:
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as e:
            print(f"warning: command {name!r} unavailable: cannot import {module_path}: {e}", file=sys.stderr)
            continue
        except Exception as e:  # a broken module must not take the other commands down with it
            print(f"warning: command {name!r} unavailable: cannot import {module_path}: "
                  f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
            continue
        add = getattr(module, "add_parser", None)
        if add is None:
            print(f"warning: command {name!r} unavailable: {module_path} has no add_parser()", file=sys.stderr)
            continue
        add(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="MetaRTT-lite: real-time tracking with "
                                     "meta-learned, pruned RT-MDNet (Jung et al., AAAI 2020).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_builtin(sub)
    _register_plugins(sub)
    return parser


@contextlib.contextmanager
def _device_env(args: argparse.Namespace) -> Iterator[None]:
    """A command's ``--device``: checked first (a bad name is a one-line error before any work), then
    ``METARTT_DEVICE`` while the command runs, so ``utils.device()`` (every builder's default, the
    results' device line, ``--workers`` processes) uses it; the previous value is restored after."""
    name = getattr(args, "device", None)
    if not name:
        yield
        return
    dev = parse_device(name)
    old = os.environ.get("METARTT_DEVICE")
    os.environ["METARTT_DEVICE"] = str(dev)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("METARTT_DEVICE", None)
        else:
            os.environ["METARTT_DEVICE"] = old


@contextlib.contextmanager
def _threads_env(args: argparse.Namespace) -> Iterator[None]:
    """A command's ``--threads`` (checked first), as ``METARTT_THREADS`` while it runs (so trackers, worker
    processes and training use it), applied to torch; without it the package's policy (1 thread, or
    ``METARTT_THREADS``). The previous value is restored after."""
    given = getattr(args, "threads", None)
    n = resolve_threads(given)
    old = os.environ.get(THREADS_ENV)
    if given is not None:
        os.environ[THREADS_ENV] = str(n)
    configure_threads(n)
    try:
        yield
    finally:
        if given is not None:
            if old is None:
                os.environ.pop(THREADS_ENV, None)
            else:
                os.environ[THREADS_ENV] = old


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show Python warnings as ``warning: <message>`` lines (no source lines) while a command runs."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _user_error(e: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input, else None (a bug: traceback)."""
    if isinstance(e, MetaRTTError):
        return str(e)
    if isinstance(e, (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)):
        if e.filename is not None:
            return f"{e.strerror or type(e).__name__}: {e.filename}"
        return str(e)
    if isinstance(e, RuntimeError) and isinstance(e.__cause__, MetaRTTError):
        return str(e)  # a tracker refused the input (run_sequence wraps it, naming tracker/sequence/frame)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input or usage, 130 interrupted)."""
    # FFmpeg (inside OpenCV) prints its own lines for unreadable videos ("moov atom not found"); the
    # error we raise says it in one line. Set OPENCV_FFMPEG_LOGLEVEL yourself to see FFmpeg's messages.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, usage errors (argparse exits 2)
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return 2
        with _device_env(args), _threads_env(args), _one_line_warnings():
            rc = func(args)
        return int(rc or 0)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as e:
        msg = _user_error(e)
        if msg is None:
            raise
        _err(msg)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
