"""Figures of notebook 06 (tracking): boxes drawn on frames, the frame player (play / pause / counter),
the six-frame strip, success plots and the upload-and-track widget.

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import cv2
import numpy as np

from ..core.boxes import parse_box
from ..data.sequences import SequenceView, load_video
from ..core.drawing import GT_COLOR, paint_boxes
from ..evaluation.ope import IOU_THRESHOLDS, run_sequence, sequence_metrics
from ..track.registry import make_tracker
from ..core.utils import MetaRTTError
from .common import _color, _hex, _in_kernel, _callback_figures, _show, _png

__all__ = ['draw_boxes', 'tracking_strip', 'tracking_player', 'success_figure', 'track_uploaded', 'upload_widget', 'bbox_text',
           'first_frame', 'online_loop_figure']


def draw_boxes(frame: np.ndarray, boxes_by_tracker: Mapping[str, np.ndarray], gt: np.ndarray | None, i: int,
               thickness: int = 1, label: bool = True) -> np.ndarray:
    """Frame ``i`` with the ground truth (green) and each tracker's box (its colour) drawn on a copy.

    Boxes are drawn in order (ground truth first) with decreasing line width, ``thickness`` for the
    last one, so trackers that agree exactly still show every colour."""
    items = ([(gt[i], GT_COLOR)] if gt is not None and np.all(np.isfinite(gt[i])) else [])
    items += [(np.asarray(b)[i], _color(n, j)) for j, (n, b) in enumerate(boxes_by_tracker.items())]
    img = paint_boxes(frame, [(b, c, thickness + len(items) - 1 - k) for k, (b, c) in enumerate(items)])
    if label:
        cv2.putText(img, f"#{i}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _legend_html(names: Sequence[str], gt: bool) -> str:
    items = ([("ground truth", GT_COLOR)] if gt else []) + [(n, _color(n, j)) for j, n in enumerate(names)]
    return " ".join(f"<span style='color:{_hex(c)};font-weight:bold;font-size:15px;margin-right:12px'>&#9632; {n}</span>"
                    for n, c in items)


def tracking_strip(frames: Sequence[np.ndarray], boxes_by_tracker: Mapping[str, np.ndarray],
                   gt: np.ndarray | None = None, n: int = 6, title: str | None = None):
    """Static companion of the player: ``n`` evenly spaced frames with every tracker's box (matplotlib)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    h, w = frames[0].shape[:2]
    fig, axes = plt.subplots(1, len(idx), figsize=(2.4 * len(idx), 2.4 * h / w + 0.7), squeeze=False)
    for ax, i in zip(axes[0], idx):
        ax.imshow(draw_boxes(frames[i], boxes_by_tracker, gt, i, label=False))
        ax.set_title(f"frame {i}", fontsize=12)
        ax.set_xticks([]); ax.set_yticks([])
    handles = ([Patch(color=np.array(GT_COLOR) / 255, label="ground truth")] if gt is not None else [])
    handles += [Patch(color=np.array(_color(nm, j)) / 255, label=nm) for j, nm in enumerate(boxes_by_tracker)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=13, frameon=False)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def tracking_player(frames: Sequence[np.ndarray], boxes_by_tracker: Mapping[str, np.ndarray],
                    gt: np.ndarray | None = None, interval_ms: int = 150):
    """A play / pause toggle and a frame slider driven by an ipywidgets ``Play`` (linked with ``jslink``, so
    they move together in the browser, without the kernel), a frame counter, and an Image showing
    :func:`draw_boxes` of the current frame; a legend names the colours. The toggle is a real pause: it
    stops on the current frame and goes on from there (``Play``'s own stop button, hidden here, rewinds)."""
    import ipywidgets as W
    n = len(frames)
    play = W.Play(value=0, min=0, max=n - 1, step=1, interval=interval_ms, description="play", show_repeat=False,
                  layout=W.Layout(display="none"))      # the timer only; the toggle below is its button
    slider = W.IntSlider(value=0, min=0, max=n - 1, description="frame")
    W.jslink((play, "value"), (slider, "value"))
    toggle = W.ToggleButton(value=False, description="play / pause", icon="play",
                            tooltip="play; press again to pause on this frame", layout=W.Layout(width="120px"))
    link = W.jslink((toggle, "value"), (play, "playing"))   # pressed = playing, in the browser itself
    counter = W.Label(value=f"frame 0 / {n - 1}")
    counter.add_class("frame-counter")                 # the browser test reads it
    image = W.Image(value=_png(draw_boxes(frames[0], boxes_by_tracker, gt, 0)), format="png",
                    width=frames[0].shape[1])

    def show(change: Any) -> None:
        image.value = _png(draw_boxes(frames[change["new"]], boxes_by_tracker, gt, change["new"]))
        counter.value = f"frame {change['new']} / {n - 1}"

    def on_playing(change: Any) -> None:               # the end of the video un-presses the toggle
        toggle.value = bool(change["new"])
        toggle.icon = "pause" if change["new"] else "play"

    slider.observe(show, names="value")
    play.observe(on_playing, names="playing")
    box = W.VBox([W.HBox([play, toggle, slider, counter]), image,
                  W.HTML(_legend_html(list(boxes_by_tracker), gt is not None))])
    box.play, box.slider, box.image, box.pause, box.counter, box.pause_link = play, slider, image, toggle, counter, link
    return box


def success_figure(boxes_by_tracker: Mapping[str, np.ndarray], gt: np.ndarray, title: str = "Success plot (OPE)"):
    """Plotly success curves (fraction of frames with IoU > t) with each tracker's AUC in the legend,
    from :func:`metartt_lite.evaluation.ope.sequence_metrics`."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for j, (n, b) in enumerate(boxes_by_tracker.items()):
        m = sequence_metrics(b, gt)
        fig.add_trace(go.Scatter(x=IOU_THRESHOLDS, y=m["success_curve"], mode="lines",
                                 name=f"{n} [AUC {m['auc']:.3f}]", line=dict(color=_hex(_color(n, j)), width=2.5)))
    fig.update_layout(title=title, xaxis_title="overlap threshold t", yaxis_title="success rate (IoU > t)",
                      yaxis_range=[0, 1.02], xaxis_range=[0, 1], height=400, width=680,
                      margin=dict(l=50, r=20, t=50, b=40), legend=dict(font=dict(size=14)), font=dict(size=13))
    return fig


def track_uploaded(video_bytes: bytes, box_text: str, tracker: str = "metartt", filename: str = "upload.avi",
                   max_frames: int | None = 300, checkpoint: str | None = None, progress: Any = None) -> dict[str, Any]:
    """Track the target ``box_text`` ('x,y,w,h', 0-based pixels of the first frame) through an uploaded
    video with the preset ``tracker``. The bytes are written to a temporary file named like ``filename``
    (its extension tells OpenCV the container), read with :func:`metartt_lite.data.sequences.load_video` and run
    with :func:`metartt_lite.evaluation.ope.run_sequence`. At most ``max_frames`` frames are tracked.

    Returns ``tracker``, ``frames`` (the frames tracked), ``boxes`` (N, 4), ``scores``, ``times`` and
    ``fps`` (update frames / update time)."""
    if not video_bytes:
        raise MetaRTTError("no video uploaded")
    box = parse_box(box_text)
    suffix = Path(filename).suffix or ".avi"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"upload{suffix}"
        path.write_bytes(bytes(video_bytes))
        seq = load_video(path, box)
        n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
        kept: list[np.ndarray] = []

        def frames() -> Iterator[np.ndarray]:
            for f in seq.frames():
                kept.append(f)
                yield f

        view = SequenceView(seq.name, frames, seq.groundtruth, init_box=seq.init_box, n_frames=n)
        trk = make_tracker(tracker, checkpoint=checkpoint)
        r = run_sequence(trk, view, progress=progress)
    upd = r["times"][1:]
    return {"tracker": tracker, "frames": kept, "boxes": r["boxes"], "scores": r["scores"], "times": r["times"],
            "fps": float(len(upd) / upd.sum()) if len(upd) and upd.sum() > 0 else None, "init_box": box}


def upload_widget(tracker: str = "metartt", trackers: Sequence[str] = ("metartt", "metartt-prune", "rtmdnet", "csrt"),
                  max_frames: int = 300):
    """FileUpload (a video) + Text ('x,y,w,h' of the target in frame 0) + tracker Dropdown + Button: the
    button calls :func:`track_uploaded` and shows a :func:`tracking_player` and a :func:`tracking_strip`
    of the result (or the error message) in an Output. With ``jupyter-bbox-widget`` installed, the
    uploaded video's first frame appears in a box-drawing widget (``ui.picker``); the box drawn there is
    written into the Text field (:func:`bbox_text`), which stays the fallback for typed coordinates."""
    import ipywidgets as W
    up = W.FileUpload(accept="video/*,.mp4,.avi,.mov,.mkv,.webm", multiple=False, description="video")
    box = W.Text(value="", placeholder="x,y,w,h (0-based px, frame 0)", description="target")
    which = W.Dropdown(options=list(trackers), value=tracker if tracker in trackers else trackers[0], description="tracker")
    go_btn = W.Button(description="Track", button_style="primary", icon="play")
    out = W.Output()
    draw = _bbox_picker(box)          # None without jupyter-bbox-widget: then the box is typed
    hint = W.HTML("<i>Draw the target's box on the first frame below, or type it as x,y,w,h.</i>" if draw is not None
                  else "<i>Type the target's box in the first frame as x,y,w,h (0-based pixels).</i>")

    def on_upload(_change: Any = None) -> None:
        if draw is None or not up.value:
            return
        f = up.value[0]
        try:
            frame = first_frame(bytes(f["content"]), f["name"])
        except Exception as e:   # shown by Track later; the picker just stays empty
            ui.last.update(error=str(e))
            return
        import base64
        draw.bboxes = []
        draw.image = "data:image/png;base64," + base64.b64encode(_png(frame)).decode()
        draw.layout.display = None

    up.observe(on_upload, names="value")
    ui = W.VBox([W.HBox([up, box]), W.HBox([which, go_btn]), hint] + ([draw] if draw is not None else []) + [out])
    ui.last = {}

    def run(_btn: Any = None) -> None:
        if _in_kernel():
            out.clear_output()
        with out:
            try:
                if not up.value:
                    print("choose a video file first")
                    return
                f = up.value[0]
                res = track_uploaded(bytes(f["content"]), box.value, which.value, filename=f["name"], max_frames=max_frames)
            except Exception as e:  # shown to the user, not raised into the event loop
                print(f"could not track: {e}")
                ui.last.update(error=str(e))
                return
            ui.last.update(result=res)
            fps = f"{res['fps']:.1f}" if res["fps"] else "n/a"
            print(f"{res['tracker']}: {len(res['frames'])} frames, {fps} frames/s")
            from IPython.display import display
            display(tracking_player(res["frames"], {res["tracker"]: res["boxes"]}))
            with _callback_figures():
                _show(tracking_strip(res["frames"], {res["tracker"]: res["boxes"]}))

    go_btn.on_click(run)
    ui.run = run
    ui.upload, ui.box_text, ui.tracker, ui.button, ui.output, ui.picker = up, box, which, go_btn, out, draw
    return ui


def bbox_text(bboxes: Sequence[Mapping[str, Any]]) -> str:
    """'x,y,w,h' of the last box drawn in a ``jupyter_bbox_widget.BBoxWidget`` ('' when none, or when it
    has no area yet)."""
    if not bboxes:
        return ""
    b = bboxes[-1]
    if float(b["width"]) <= 0 or float(b["height"]) <= 0:     # a click, not a box (yet)
        return ""
    return f"{float(b['x']):.0f},{float(b['y']):.0f},{float(b['width']):.0f},{float(b['height']):.0f}"


def _bbox_picker(box_text: Any):
    """A BBoxWidget (PyPI ``jupyter-bbox-widget``) whose last drawn box is written into ``box_text``;
    None when that package is not installed (the box is then typed)."""
    try:
        from jupyter_bbox_widget import BBoxWidget
    except ImportError:
        return None
    picker = BBoxWidget(classes=["target"], hide_buttons=True)
    picker.layout.display = "none"            # shown once a video's first frame is in it

    def on_boxes(change: Any) -> None:
        t = bbox_text(change["new"])
        if t:
            box_text.value = t

    picker.observe(on_boxes, names="bboxes")
    return picker


def first_frame(video_bytes: bytes, filename: str = "upload.avi") -> np.ndarray:
    """The first frame (RGB uint8) of a video given as bytes (``filename``'s extension names the container)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"upload{Path(filename).suffix or '.avi'}"
        path.write_bytes(bytes(video_bytes))
        cap = cv2.VideoCapture(str(path))
        try:
            ok, frame = cap.read()
        finally:
            cap.release()
    if not ok:
        raise MetaRTTError(f"cannot read a frame from {filename}")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)



def online_loop_figure(log: Mapping[str, Sequence[Any]], success_thr: float, title: str = ""):
    """Matplotlib, two panels over the frames of one run: top, the tracker's score (the mean target logit of its
    top candidates) against the success threshold, frames that failed shaded, and the online updates marked
    (▲ long-term, ✕ short-term); bottom, the IoU of the reported box with the ground truth.
    ``log``: ``frame``, ``score``, ``success``, ``update`` (None, 'long' or 'short') and ``iou``, per frame."""
    import matplotlib.pyplot as plt
    f = np.asarray(log["frame"])
    score, iou_ = np.asarray(log["score"], float), np.asarray(log["iou"], float)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 4.6), sharex=True, gridspec_kw=dict(height_ratios=[3, 2]))
    for i, ok in zip(f, log["success"]):
        if not ok:
            for ax in (ax1, ax2):
                ax.axvspan(i - 0.5, i + 0.5, color="C3", alpha=0.12, lw=0)
    ax1.plot(f, score, "o-", color="C0", ms=4, label="score (mean logit of the top candidates)")
    ax1.axhline(success_thr, color="0.3", ls="--", lw=1, label=f"success threshold ({success_thr:g})")
    for kind, marker, col in (("long", "^", "C2"), ("short", "x", "C3")):
        sel = [k for k, u in enumerate(log["update"]) if u == kind]
        if sel:
            ax1.plot(f[sel], score[sel], marker, color=col, ms=10, mew=2, ls="none", label=f"{kind}-term update")
    ax1.set(ylabel="score", title=title)
    ax1.legend(fontsize=10, loc="best")
    ax2.plot(f, iou_, "s-", color="C1", ms=3)
    ax2.set(xlabel="frame (shaded: failed, the search widens)", ylabel="IoU with GT", ylim=(0, 1.02))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=10)
    fig.tight_layout()
    return fig
