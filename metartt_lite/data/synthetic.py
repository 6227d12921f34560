"""Synthetic tracking clips from still frames: far more targets than videos.

Following GOTURN (Held, Thrun & Savarese, "Learning to Track at 100 FPS with Deep Regression Networks",
ECCV 2016), any frame of a training sequence, or a bundled photo, becomes a short clip: a camera
moves smoothly over the static scene, so the chosen box (the real object box, or a random region of
the frame) follows a random path while its appearance stays the same. Copies of the target patch are
pasted elsewhere in the still image first, as hard negatives that look exactly like the target.

Motion model. GOTURN fits the motion between two annotated frames with Laplace distributions:
the centre moves by ``w·Δx, h·Δy`` with ``Δx, Δy ~ Laplace(0, 1/5)`` and the size changes by
``γ ~ Laplace(1, 1/15)`` clipped to [0.6, 1.4]; small motions dominate. A clip needs a *smooth* path
of many frames, so here the Laplace draws drive a velocity instead of the position::

    v_t = m · v_{t-1} + (1 - m) · ε_t,   ε_t ~ Laplace(0, motion_scale)    (per axis, box sizes)
    c_t = c_{t-1} + v_t · (w_t, h_t)

with ``m = momentum`` (0.7). The per-frame step is small (std ≈ 0.6·b ≈ 0.04 box sizes for the
default b = 1/15) and changes slowly, while the displacement over k frames grows like √k·√2·b: after
5–10 frames it has about the spread of GOTURN's per-pair b = 1/5 (whose annotated frame pairs are
several video frames apart). The scale follows the same process in log space with
``scale_b = 1/60`` per frame (about GOTURN's 1/15 after ~16 frames) and stays within
``scale_range`` = [0.6, 1.4] of the start. Paths are reflected at the frame border so the target
always stays inside the frame.

Frame ``i`` is ``cv2.warpAffine(scene, A_i)`` with ``A_i`` a similarity (scale ``s_i``, translation
``t_i``); ground-truth and distractor boxes are transformed by the same ``A_i``, so they are exact up
to float precision. Frames are rendered on demand, so thousands of clips cost only their geometry::

    clips = make_clips(train_sequences, n_clips=2000, seed=0)
    clips += make_clips([still_image_source(skimage.data.astronaut(), name="astronaut")], 50)
    clip = clips[0]; clip.frame(3), clip.groundtruth[3], clip.distractors[3]
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from ..core.boxes import MIN_SIZE
from ..core.utils import MetaRTTError

__all__ = ["SyntheticConfig", "SyntheticClip", "StillImageSource", "make_clips", "still_image_source"]


@dataclass(frozen=True)
class SyntheticConfig:
    """How synthetic clips are made (see the module docstring for the motion model)."""
    n_frames: int = 24
    motion_scale: float = 1 / 15        # Laplace b of the per-frame velocity drive, in box sizes
    momentum: float = 0.7               # v_t = momentum·v_{t-1} + (1 − momentum)·Laplace draw
    scale_b: float = 1 / 60             # Laplace b of the per-frame log-scale drive
    scale_range: tuple[float, float] = (0.6, 1.4)   # total scale relative to frame 0
    random_region_prob: float = 0.5     # target = a random region instead of the real box
    region_size: tuple[float, float] = (0.05, 0.3)  # random region sqrt(w·h) / shorter image side
    region_aspect: tuple[float, float] = (0.5, 2.0)  # random region w / h
    n_distractors: int = 1              # pasted copies of the target patch (IoU 0 with it)
    distractor_scale: tuple[float, float] = (0.9, 1.1)  # copy size × U(lo, hi)
    max_side: int = 640                 # the still frame is first resized so its longer side ≤ this

    def __post_init__(self) -> None:
        def bad(what: str) -> MetaRTTError:
            return MetaRTTError(f"SyntheticConfig: {what}")
        if int(self.n_frames) != self.n_frames or self.n_frames < 1:
            raise bad(f"n_frames must be a positive integer, got {self.n_frames}")
        for k in ("motion_scale", "scale_b"):
            v = getattr(self, k)
            if not np.isfinite(v) or v < 0:
                raise bad(f"{k} must be finite and >= 0, got {v}")
        if not 0 <= self.momentum < 1:
            raise bad(f"momentum must be in [0, 1), got {self.momentum}")
        lo, hi = self.scale_range
        if not 0 < lo <= 1 <= hi or not np.isfinite(hi):
            raise bad(f"scale_range must satisfy 0 < lo <= 1 <= hi, got {self.scale_range}")
        if not 0 <= self.random_region_prob <= 1:
            raise bad(f"random_region_prob must be in [0, 1], got {self.random_region_prob}")
        lo, hi = self.region_size
        if not 0 < lo <= hi <= 0.5:
            raise bad(f"region_size must satisfy 0 < lo <= hi <= 0.5, got {self.region_size}")
        lo, hi = self.region_aspect
        if not 0.25 <= lo <= hi <= 4:
            raise bad(f"region_aspect must satisfy 0.25 <= lo <= hi <= 4, got {self.region_aspect}")
        if int(self.n_distractors) != self.n_distractors or self.n_distractors < 0:
            raise bad(f"n_distractors must be an integer >= 0, got {self.n_distractors}")
        lo, hi = self.distractor_scale
        if not 0.5 <= lo <= hi <= 2:
            raise bad(f"distractor_scale must satisfy 0.5 <= lo <= hi <= 2, got {self.distractor_scale}")
        if int(self.max_side) != self.max_side or self.max_side < 32:
            raise bad(f"max_side must be an integer >= 32, got {self.max_side}")


# --------------------------------------------------------------------------------------- helpers

def _rgb(img: Any, what: str) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise MetaRTTError(f"{what} must be a uint8 image, got dtype {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] in (1, 4):
        a = np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 8:
        raise MetaRTTError(f"{what} must be an (H, W) or (H, W, 3|4) image of at least 8x8 px, got {a.shape}")
    return np.ascontiguousarray(a)


def _resized_size(W: int, H: int, max_side: int) -> tuple[int, int]:
    f = min(1.0, max_side / max(W, H))
    return (max(1, int(round(W * f))), max(1, int(round(H * f)))) if f < 1 else (W, H)


def _valid(box: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0)


def _warp_box_to_patch(img: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample the xywh ``box`` region of ``img`` into a ``size`` = (w, h) patch (sub-pixel exact)."""
    sx, sy = size[0] / box[2], size[1] / box[3]
    # continuous coords q = s·(p − xy); cv2 indexes pixel centres (p_idx + 0.5)
    M = np.array([[sx, 0, sx * (0.5 - box[0]) - 0.5], [0, sy, sy * (0.5 - box[1]) - 0.5]])
    return cv2.warpAffine(img, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _reflect(x: float, v: float, lo: float, hi: float) -> tuple[float, float]:
    """Keep ``x`` in [lo, hi] by reflecting at the bounds (the velocity ``v`` flips with it)."""
    if hi - lo < 1e-9:
        return (lo + hi) / 2, 0.0
    for _ in range(4):
        if x < lo:
            x, v = 2 * lo - x, -v
        elif x > hi:
            x, v = 2 * hi - x, -v
        else:
            break
    return float(np.clip(x, lo, hi)), v


_SCENES: "OrderedDict[SyntheticClip, np.ndarray]" = OrderedDict()  # a few rendered still scenes
_SCENE_CACHE = 4


# --------------------------------------------------------------------------------------- sources

@dataclass(eq=False)
class StillImageSource:
    """One still image as a one-frame source; ``random_region_only`` when it has no object box."""
    name: str
    image: np.ndarray
    groundtruth: np.ndarray
    random_region_only: bool = False

    def __len__(self) -> int:
        return 1

    def frame(self, i: int) -> np.ndarray:
        if i not in (0, -1):
            raise MetaRTTError(f"frame {i} out of range: still image {self.name!r} has 1 frame")
        return self.image

    def frames(self) -> Iterator[np.ndarray]:
        yield self.image

    @property
    def frame_size(self) -> tuple[int, int]:
        return (int(self.image.shape[1]), int(self.image.shape[0]))


def still_image_source(image: np.ndarray, box: Sequence[float] | None = None,
                       name: str = "still") -> StillImageSource:
    """Wrap one image (e.g. ``skimage.data.astronaut()``) as a source for :func:`make_clips`.

    ``box`` (0-based xywh) is the object box; without one every clip uses a random region.
    """
    img = _rgb(image, f"still image {name!r}")
    if box is None:
        return StillImageSource(name, img, np.full((1, 4), np.nan), random_region_only=True)
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not _valid(b):
        raise MetaRTTError(f"box of still image {name!r} must be a finite [x, y, w, h] with w, h > 0, got {box}")
    return StillImageSource(name, img, b[None].copy())


# --------------------------------------------------------------------------------------- clips

class SyntheticClip:
    """A synthetic clip, duck-typed like ``data.Sequence`` (name, groundtruth, frame(i), frames(), len).

    ``groundtruth`` (N, 4) and ``distractors`` (N, D, 4) are 0-based xywh in frame pixels; a
    distractor row is NaN when there was no room to paste it. ``source`` is the source's name,
    ``source_frame`` the still frame used, ``scales``/``affines`` the per-frame camera transform
    (frame = A_i · scene), ``random_region`` whether the target is a random region.
    """

    def __init__(self, source: Any, frame_index: int, cfg: SyntheticConfig | None = None, seed: int = 0,
                 random_region: bool | None = None):
        cfg = cfg or SyntheticConfig()
        self.cfg, self.seed = cfg, int(seed)
        self.source_seq, self.source, self.source_frame = source, str(source.name), int(frame_index)
        self.name = f"synth-{self.source}-{self.source_frame}-{self.seed}"
        rng = np.random.default_rng([self.seed, 0x5A17])
        fs = getattr(source, "frame_size", None)
        if fs is None:
            h, w = np.asarray(source.frame(frame_index)).shape[:2]
            fs = (w, h)
        self._src_size = (int(fs[0]), int(fs[1]))
        W, H = _resized_size(*self._src_size, cfg.max_side)
        self.frame_size = (W, H)
        f = np.array([W / self._src_size[0], H / self._src_size[1]])
        # the target box in the (resized) still scene
        box = np.asarray(source.groundtruth, dtype=np.float64)[frame_index].copy()
        use_region = rng.random() < cfg.random_region_prob if random_region is None else random_region
        if _valid(box):
            box[:2] *= f
            box[2:] *= f
            x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
            box = np.array([x0, y0, min(box[0] + box[2], W) - x0, min(box[1] + box[3], H) - y0])
        if not use_region and not (box[2] >= MIN_SIZE and box[3] >= MIN_SIZE):
            use_region = True  # no usable object box here (absent, or outside the frame)
        if use_region:
            side = rng.uniform(*cfg.region_size) * min(W, H)
            ar = np.exp(rng.uniform(*np.log(cfg.region_aspect)))
            wh = np.minimum([side * np.sqrt(ar), side / np.sqrt(ar)], [W, H])
            wh = np.maximum(wh, MIN_SIZE)
            box = np.array([rng.uniform(0, W - wh[0]), rng.uniform(0, H - wh[1]), wh[0], wh[1]])
        self.random_region = bool(use_region)
        self.scene_box = box
        self.scene_distractors = self._place_distractors(box, rng)
        self._make_path(rng)

    # ---- geometry
    def _place_distractors(self, box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Integer-aligned boxes for the pasted copies: inside the scene, disjoint from the target and
        from each other (NaN where 50 random tries found no room)."""
        W, H = self.frame_size
        out = np.full((self.cfg.n_distractors, 4), np.nan)
        taken = [box]
        for k in range(self.cfg.n_distractors):
            for _ in range(50):
                r = rng.uniform(*self.cfg.distractor_scale)
                pw, ph = int(max(round(box[2] * r), 2)), int(max(round(box[3] * r), 2))
                if pw > W or ph > H:
                    continue
                d = np.array([rng.integers(0, W - pw + 1), rng.integers(0, H - ph + 1), pw, ph], np.float64)
                if all(d[0] >= t[0] + t[2] or t[0] >= d[0] + d[2] or d[1] >= t[1] + t[3] or t[1] >= d[1] + d[3]
                       for t in taken):
                    out[k] = d
                    taken.append(d)
                    break
        return out

    def _make_path(self, rng: np.random.Generator) -> None:
        cfg, (W, H), b = self.cfg, self.frame_size, self.scene_box
        n, m = int(cfg.n_frames), cfg.momentum
        c0 = b[:2] + b[2:] / 2
        # the box (inside the scene, so W / w >= 1) must still fit in the frame at the largest scale
        log_lo, log_hi = np.log(cfg.scale_range[0]), np.log(min(cfg.scale_range[1], W / b[2], H / b[3]))
        ls, u = 0.0, 0.0                       # log scale and its velocity
        c, v = c0.copy(), np.zeros(2)          # centre (frame px) and velocity (box sizes / frame)
        scales, centres = np.ones(n), np.tile(c0, (n, 1))
        for t in range(1, n):
            u = m * u + (1 - m) * rng.laplace(0.0, cfg.scale_b) if cfg.scale_b > 0 else 0.0
            ls, u = _reflect(ls + u, u, log_lo, log_hi)
            s = float(np.exp(ls))
            wh = b[2:] * s
            eps = rng.laplace(0.0, cfg.motion_scale, 2) if cfg.motion_scale > 0 else np.zeros(2)
            v = m * v + (1 - m) * eps
            c = c + v * wh
            for a, size in ((0, W), (1, H)):
                pos, vel = _reflect(c[a], v[a] * wh[a], wh[a] / 2, size - wh[a] / 2)
                c[a], v[a] = pos, vel / wh[a]
            scales[t], centres[t] = s, c
        # frame = s · scene + t  maps the scene box centre c0 onto the path centre
        trans = centres - scales[:, None] * c0
        self.scales = scales
        self.affines = np.zeros((n, 2, 3))
        self.affines[:, 0, 0] = self.affines[:, 1, 1] = scales
        self.affines[:, :, 2] = trans
        self.groundtruth = self._apply(b[None])[:, 0]
        self.distractors = self._apply(self.scene_distractors)
        # the float maths may leave the box 1 ulp outside the frame: clamp into it exactly
        gt = self.groundtruth
        gt[:, 0] = np.clip(gt[:, 0], 0.0, W - gt[:, 2])
        gt[:, 1] = np.clip(gt[:, 1], 0.0, H - gt[:, 3])

    def _apply(self, boxes: np.ndarray) -> np.ndarray:
        """Scene xywh boxes (K, 4) -> per-frame boxes (N, K, 4) under each frame's similarity."""
        s = self.scales[:, None, None]
        t = self.affines[:, None, :, 2]
        return np.concatenate([s * boxes[None, :, :2] + t, s * boxes[None, :, 2:]], axis=-1)

    @property
    def init_box(self) -> np.ndarray:
        return self.groundtruth[0].copy()

    def __len__(self) -> int:
        return len(self.groundtruth)

    def __repr__(self) -> str:
        return (f"SyntheticClip(name={self.name!r}, n_frames={len(self)}, "
                f"random_region={self.random_region}, n_distractors={len(self.scene_distractors)})")

    # ---- pixels
    def scene(self) -> np.ndarray:
        """The still (resized) image with the distractor copies pasted in (read-only, cached)."""
        if self in _SCENES:
            _SCENES.move_to_end(self)
            return _SCENES[self]
        img = _rgb(self.source_seq.frame(self.source_frame), f"frame {self.source_frame} of {self.source}")
        if (img.shape[1], img.shape[0]) != self._src_size:
            raise MetaRTTError(f"frame {self.source_frame} of {self.source} is {img.shape[1]}x{img.shape[0]}, "
                               f"expected {self._src_size[0]}x{self._src_size[1]} (the sequence's frame size)")
        if self.frame_size != self._src_size:
            img = cv2.resize(img, self.frame_size, interpolation=cv2.INTER_AREA)
        scene = img.copy()
        for d in self.scene_distractors:
            if _valid(d):
                x, y, w, h = (int(v) for v in d)
                scene[y:y + h, x:x + w] = _warp_box_to_patch(img, self.scene_box, (w, h))
        scene.setflags(write=False)
        _SCENES[self] = scene
        while len(_SCENES) > _SCENE_CACHE:
            _SCENES.popitem(last=False)
        return scene

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (negative indices count from the end): uint8 RGB (H, W, 3)."""
        n = len(self)
        if not -n <= i < n:
            raise MetaRTTError(f"frame {i} out of range: clip {self.name!r} has {n} frames")
        A = self.affines[i % n].copy()
        A[:, 2] += 0.5 * (A[0, 0] - 1)  # continuous (pixel-corner) coords -> cv2 pixel-centre indices
        return cv2.warpAffine(self.scene(), A, self.frame_size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)

    def frames(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.frame(i)


def _usable_frames(src: Any) -> tuple[list[int], bool]:
    """Frames of ``src`` with a valid box; (frames, forced random region)."""
    gt = np.asarray(src.groundtruth, dtype=np.float64)
    if gt.ndim != 2 or gt.shape[1] != 4 or len(gt) == 0:
        raise MetaRTTError(f"source {getattr(src, 'name', src)!r}: ground truth must have shape (N>0, 4), got {gt.shape}")
    ok = np.all(np.isfinite(gt), axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if ok.any():
        return [int(i) for i in np.flatnonzero(ok)], False
    if getattr(src, "random_region_only", False):
        return list(range(len(gt))), True
    raise MetaRTTError(f"source {src.name!r} has no frame with a valid (finite, positive-size) box")


def make_clips(sources: Sequence[Any], n_clips: int, cfg: SyntheticConfig | None = None,
               seed: int = 0) -> list[SyntheticClip]:
    """``n_clips`` synthetic clips from ``sources`` (sequence-like: name, groundtruth, frame(i), len).

    Each draw picks a source uniformly, then one of its frames with a valid box uniformly (so every
    video counts the same however long it is), and makes one :class:`SyntheticClip` from it.
    Deterministic given ``seed``; names are unique within the call.
    """
    cfg = cfg or SyntheticConfig()
    if not isinstance(cfg, SyntheticConfig):
        raise MetaRTTError(f"cfg must be a SyntheticConfig, got {type(cfg).__name__}")
    if isinstance(n_clips, bool) or int(n_clips) != n_clips or n_clips < 1:
        raise MetaRTTError(f"n_clips must be a positive integer, got {n_clips}")
    sources = list(sources)
    if not sources:
        raise MetaRTTError("make_clips needs at least one source")
    usable = [_usable_frames(s) for s in sources]
    rng = np.random.default_rng(seed)
    clips, names = [], set()
    while len(clips) < int(n_clips):
        j = int(rng.integers(len(sources)))
        frames, forced = usable[j]
        fi = frames[int(rng.integers(len(frames)))]
        clip_seed = int(rng.integers(2 ** 31))
        clip = SyntheticClip(sources[j], fi, cfg, seed=clip_seed, random_region=True if forced else None)
        if clip.name not in names:
            names.add(clip.name)
            clips.append(clip)
    return clips
