"""A TraX server, so the VOT toolkit (and any TraX client) runs our trackers: ``python -m metartt_lite.vot``.

TraX (https://github.com/votchallenge/trax, PyPI ``vot-trax``) is the protocol the VOT toolkit speaks to
trackers over stdin/stdout. The server offers rectangle regions and image paths: on ``initialize`` it
builds a fresh tracker (:func:`metartt_lite.make_tracker`, seeded) and calls ``init(frame, box)``; on
each ``frame`` it calls ``update`` and answers the box, with the tracker's score as the ``confidence``
property. Boxes are ``x, y, w, h`` in 0-based pixels on both sides (the VOT toolkit's convention).

A VOT toolkit workspace's ``trackers.ini``::

    [metartt]
    label = MetaRTT
    protocol = trax
    command = python -m metartt_lite.vot --tracker metartt
    # optional: env_METARTT_DEVICE = cuda

(use the full path of the Python that has metartt_lite installed if ``python`` is another one), then
``vot test metartt`` (a synthetic sequence) or ``vot evaluate metartt`` in the workspace.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np

from .data.sequences import read_frame
from .core.threads import resolve_threads
from .track.registry import list_trackers, make_tracker
from .core.utils import MetaRTTError, seed_everything

__all__ = ["serve", "main", "build_parser"]


def _trax():
    try:
        import trax
    except ImportError:
        raise MetaRTTError("the TraX server needs the vot-trax package: pip install vot-trax "
                           "(or pip install 'metartt_lite[vot]')") from None
    return trax


def _image_path(image: dict, trax) -> str:
    img = image.get(trax.ImageChannel.COLOR) if isinstance(image, dict) else image
    if img is None:
        raise MetaRTTError("the TraX client sent no colour image")
    return img.path()


def serve(tracker_name: str = "metartt", checkpoint: str | None = None, seed: int = 0, log: bool = False) -> int:
    """Answer TraX requests on stdin/stdout until the client quits; returns the number of sequences
    (initialize requests) served."""
    trax = _trax()
    if tracker_name not in list_trackers():
        raise MetaRTTError(f"unknown tracker {tracker_name!r}; known: {', '.join(list_trackers())}")
    make_tracker(tracker_name, checkpoint=checkpoint, seed=seed)  # a bad checkpoint fails before the handshake
    tracker = None
    n_init = 0
    with trax.Server([trax.Region.RECTANGLE], [trax.Image.PATH], tracker_name=f"metartt_lite/{tracker_name}",
                     tracker_family="metartt_lite", log=log) as server:
        while True:
            req = server.wait()
            if req.type == trax.TraxStatus.QUIT:
                break
            frame = read_frame(_image_path(req.image, trax))
            if req.type == trax.TraxStatus.INITIALIZE:
                region = req.objects[0][0]
                box = np.asarray(region.bounds(), dtype=np.float64)
                seed_everything(seed)
                tracker = make_tracker(tracker_name, checkpoint=checkpoint, seed=seed)
                tracker.init(frame, box)
                out, score = box, 1.0
                n_init += 1
            else:
                if tracker is None:
                    raise MetaRTTError("TraX frame request before initialize")
                out, score = tracker.update(frame)
            x, y, w, h = (float(v) for v in np.asarray(out, dtype=np.float64).reshape(4))
            server.status([(trax.Rectangle.create(x, y, w, h), {})], {"confidence": f"{float(score):.6g}"})
    return n_init


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m metartt_lite.vot",
                                description="TraX server for the VOT toolkit: runs one metartt_lite tracker "
                                            "over stdin/stdout (started by the toolkit, not by hand).")
    p.add_argument("--tracker", default="metartt", help=f"tracker name ({', '.join(list_trackers())})")
    p.add_argument("--checkpoint", default=None, help="weights for the tracker (default: the shipped ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", action="store_true", help="TraX protocol log on stderr")
    p.add_argument("--threads", default=None, help="torch CPU threads (default $METARTT_THREADS, else 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            os.environ["METARTT_THREADS"] = str(resolve_threads(args.threads))  # every make_tracker applies it
        serve(args.tracker, args.checkpoint, args.seed, args.log)
    except MetaRTTError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
