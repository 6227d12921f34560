"""Our trackers inside the got10k toolkit (PyPI ``got10k``: ``pip install "metartt_lite[got10k]"``).

:class:`Got10kTracker` subclasses ``got10k.trackers.Tracker``, so every got10k experiment runs it as it
runs its own trackers::

    from got10k.experiments import ExperimentOTB, ExperimentGOT10k
    from metartt_lite.got10k_adapter import Got10kTracker

    tracker = Got10kTracker("metartt")            # any name of metartt_lite.list_trackers()
    e = ExperimentGOT10k("data/GOT-10k", subset="val")
    e.run(tracker)
    e.report([tracker.name])

got10k hands ``init``/``update`` a PIL image (RGB) and boxes ``[x, y, w, h]`` exactly as its annotation
files hold them, which for OTB and GOT-10k are **1-based** (the top-left pixel is (1, 1)); ``one_based``
(default True) converts them to our 0-based boxes on the way in and back on the way out, so got10k's
result files are in the same convention as its ground truth. The IoU-based scores do not depend on it
(both boxes move together); the tracker's crops do, by one pixel.

A fresh tracker is built for every video (``init``), with the same seed, so the results are repeatable:
``is_deterministic`` is True and got10k's GOT-10k experiment runs each video once instead of three times.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .data.sequences import as_rgb
from .track.registry import list_trackers, make_tracker
from .core.utils import MetaRTTError

try:
    from got10k.trackers import Tracker as _Got10kBase
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("metartt_lite.got10k_adapter needs the got10k package: "
                      "pip install got10k (or pip install 'metartt_lite[got10k]')") from e

__all__ = ["Got10kTracker"]


class Got10kTracker(_Got10kBase):
    """A metartt_lite tracker as a got10k ``Tracker``.

    ``tracker``: a name of :func:`metartt_lite.list_trackers` (default ``metartt``); ``name``: the name
    got10k files the results under (default: ``tracker``); ``checkpoint``, ``seed``, ``dev`` and ``kw`` go
    to :func:`metartt_lite.make_tracker`."""

    def __init__(self, tracker: str = "metartt", name: str | None = None, checkpoint: str | Path | None = None,
                 seed: int = 0, dev: Any = None, one_based: bool = True, **kw: Any):
        if tracker not in list_trackers():
            raise MetaRTTError(f"unknown tracker {tracker!r}; known: {', '.join(list_trackers())}")
        super().__init__(name=name or tracker, is_deterministic=True)
        self.tracker_name = tracker
        self.one_based = bool(one_based)
        self._kw = dict(checkpoint=checkpoint, seed=seed, dev=dev, **kw)
        make_tracker(tracker, **self._kw)  # a bad checkpoint fails here, not in the first video
        self.tracker: Any = None

    def init(self, image, box) -> None:
        frame = as_rgb(np.asarray(image), what="got10k image")
        b = np.asarray(box, dtype=np.float64).reshape(4).copy()
        if self.one_based:
            b[:2] -= 1.0
        self.tracker = make_tracker(self.tracker_name, **self._kw)
        self.tracker.init(frame, b)

    def update(self, image) -> np.ndarray:
        if self.tracker is None:
            raise MetaRTTError("Got10kTracker.update before init")
        box, _score = self.tracker.update(as_rgb(np.asarray(image), what="got10k image"))
        out = np.asarray(box, dtype=np.float64).reshape(4).copy()
        if self.one_based:
            out[:2] += 1.0
        return out
