"""What every notebook's figures share: the notebook setup, tracker colours, PNG encoding, and
:func:`figure_widget` (controls → a plain function → its figure, redrawn in an ``Output``).

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np
import torch

from ..data.sequences import SequenceView

__all__ = ['TRACKER_COLORS', 'setup_notebook', 'as_sequence', 'encode_video', 'figure_png', 'figure_widget']


TRACKER_COLORS: dict[str, tuple[int, int, int]] = {
    "metartt": (230, 40, 40), "metartt-prune": (250, 150, 0), "rtmdnet": (40, 90, 240),
    "rtmdnet-k5": (120, 60, 200), "rtmdnet-k5-tuned": (180, 60, 200), "csrt": (0, 190, 210),
    "kcf": (200, 200, 0), "mil": (150, 150, 150),
}


_FALLBACK = [(230, 40, 40), (40, 90, 240), (250, 150, 0), (0, 190, 210), (150, 60, 200), (120, 120, 120)]


def _color(name: str, i: int = 0) -> tuple[int, int, int]:
    return TRACKER_COLORS.get(name, _FALLBACK[i % len(_FALLBACK)])


def _hex(rgb: Sequence[int]) -> str:
    return "#%02x%02x%02x" % tuple(int(c) for c in rgb)


def setup_notebook(name: str, seed: int = 0) -> tuple[bool, torch.device, float]:
    """The first cell of every notebook: fast mode, seeds, threads, device, feature cache, start time.

    * ``FAST`` is ``METARTT_FAST == "1"`` (small sizes: tests, a first look);
    * torch and numpy are seeded with ``seed``;
    * the tensors are small, so intra-op threads buy nothing and, on a busy machine, fight each other:
      fast mode runs torch on one thread unless ``METARTT_THREADS`` says otherwise;
    * everything in the notebooks is small enough for a CPU;
    * trunk features are cached in a fresh temporary folder unless ``METARTT_CACHE`` names one.

    Returns ``(FAST, DEV, T_START)`` and prints what it set."""
    fast = os.environ.get("METARTT_FAST") == "1"
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(int(os.environ.get("METARTT_THREADS") or (1 if fast else torch.get_num_threads())))
    os.environ["METARTT_CACHE"] = os.environ.get("METARTT_CACHE") or tempfile.mkdtemp(prefix=f"metartt_nb{name}_")
    print(f"notebook {name}: FAST={fast}  seed={seed}  torch {torch.__version__}  threads={torch.get_num_threads()}  "
          f"feature cache {os.environ['METARTT_CACHE']}")
    return fast, torch.device("cpu"), time.time()


def as_sequence(video: Any, n_frames: int | None = None) -> SequenceView:
    """A :class:`SequenceView` of a SampleVideo (or anything with ``name``, ``frames`` list/method and
    ``groundtruth``), optionally cut to its first ``n_frames``."""
    frames = video.frames
    return SequenceView(str(getattr(video, "name", "video")), frames, video.groundtruth, n_frames=n_frames)


def encode_video(frames: Sequence[np.ndarray], fps: float = 15.0, fourcc: str = "MJPG", suffix: str = ".avi") -> bytes:
    """Encode RGB frames as a video file (default Motion-JPEG AVI, which every OpenCV build writes)
    and return its bytes (what a browser upload hands to :func:`track_uploaded`)."""
    if not len(frames):
        raise ValueError("no frames to encode")
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"video{suffix}"
        wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
        if not wr.isOpened():
            raise RuntimeError(f"OpenCV cannot write {fourcc} {suffix} videos here")
        try:
            for f in frames:
                wr.write(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
        finally:
            wr.release()
        return path.read_bytes()


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def figure_png(fig: Any, dpi: float | None = None) -> bytes:
    """A matplotlib figure as PNG bytes (tight bounding box, like the inline backend's rendering)."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _callback_figures():
    """Context for drawing matplotlib figures inside a widget callback: pyplot's interactive mode off.

    Why: ipykernel (7.x) runs the inline backend's ``post_execute`` hook, ``flush_figures``, after every
    comm message, on its shell thread, while the widget's callback is still drawing on the main thread.
    In interactive mode every new pyplot figure marks itself "to draw", so that flush displays the
    half-built figure and then calls ``plt.close('all')`` under the callback's feet: the Output got a
    white PNG (notebook 01's patch grid) or a sliver (notebook 06's strip). With interactive mode off,
    new figures are not queued for the inline backend, the flush has nothing to do, and the callback
    alone renders (:func:`figure_png`), displays and closes its figures."""
    import matplotlib.pyplot as plt
    return plt.ioff()


def _show(fig: Any) -> None:
    """Display a plotly or matplotlib figure, or a tuple/list of them (inside the current Output
    context); a matplotlib figure is rendered to PNG here (:func:`figure_png`) and closed, so it is
    not shown again at the end of the cell."""
    if isinstance(fig, (list, tuple)):
        for f in fig:
            _show(f)
        return
    if hasattr(fig, "savefig"):
        import matplotlib.pyplot as plt
        if _in_kernel():
            from IPython.display import Image, display
            display(Image(data=figure_png(fig), format="png"))
        plt.close(fig)
    elif _in_kernel():
        from IPython.display import display
        display(fig)


def figure_widget(render: Callable[..., Any], controls: Mapping[str, Any], title: str | None = None):
    """A VBox of ``controls`` (ipywidgets keyed by ``render``'s argument names) above an Output that
    shows ``render(**values)`` and is redrawn whenever a control changes.

    ``box.refresh()`` redraws by hand; ``box.last`` holds the latest keyword arguments and figure (what
    a test inspects after setting a control's ``.value``)."""
    import ipywidgets as W
    out = W.Output()
    rows = ([W.HTML(f"<b>{title}</b>")] if title else []) + [W.HBox(list(controls.values())), out]
    box = W.VBox(rows)
    box.last = {}

    def refresh(_change: Any = None) -> None:
        kw = {k: c.value for k, c in controls.items()}
        # rendering to PNG and closing happen inside the same context as drawing: savefig marks the
        # figure stale, and in interactive mode that queues it for the shell thread's flush, which then
        # displayed a half-drawn (white) copy into the Output (notebook 01's patch grid, seen in CI)
        with _callback_figures():
            fig = render(**kw)
            box.last.clear()
            box.last.update(kwargs=kw, figure=fig)
            if _in_kernel():
                out.clear_output(wait=True)
            with out:
                _show(fig)

    for c in controls.values():
        c.observe(refresh, names="value")
    box.refresh = refresh
    box.controls = dict(controls)
    box.output = out
    refresh()
    return box


def _np(t: Any) -> np.ndarray:
    return (t.detach().float().cpu().numpy() if torch.is_tensor(t) else np.asarray(t, dtype=np.float64)).reshape(-1)


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()

