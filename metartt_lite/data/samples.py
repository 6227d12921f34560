"""Small sample tracking videos with exact ground truth, made from real photographs.

The idea: cut a real object out of one photograph that ships inside scikit-image (the cat's face from
``chelsea``, the astronaut's head, the espresso cup from ``coffee``, the shuttle model behind the
astronaut), paste it with a feathered alpha mask over another photograph (the Hubble deep field, the
rocket launch pad, a tissue slide, a brick wall, ...) and move it along a smooth random path. Because
we place the object ourselves, the ground-truth box of every frame is known exactly — the box the
object was warped into, with sub-pixel precision — and everything is reproducible from one seed.

Each preset adds one of the classic tracking difficulties (OTB attributes) on top of the motion:
``translation``, ``scale`` (0.6x–1.6x), ``occlusion`` (a patch of another photo slides over part of
the object), ``distractor`` (a mirrored copy of the object moves nearby), ``blur`` (motion blur along
the direction of motion) and ``illumination`` (global gain and gamma changing over time).

The videos are small (320x240, 60 frames by default) and take well under a second to make, so the
demo, the notebooks and the fast tests use them::

    video = make_sample("occlusion", seed=3)
    video.frames[0], video.groundtruth[0]      # uint8 RGB (H, W, 3), [x, y, w, h] 0-based
    write_sample_as_otb(video, "runs/occlusion_s3")   # img/0001.jpg ... + groundtruth_rect.txt

Ground-truth coordinates are multiples of 1/64 px, so they survive the 1-based text round trip of
:func:`write_sample_as_otb` bit for bit.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from ..core.boxes import validate_box
from .sequences import as_rgb
from ..core.utils import MetaRTTError, atomic_write

__all__ = ["SampleVideo", "SampleConfig", "PRESETS", "OBJECTS", "BACKGROUNDS", "OCCLUDERS",
           "make_sample", "make_target_leaves", "list_presets", "sample_names", "make_still_pseudo_video",
           "write_sample_as_otb"]

QUANTUM = 1.0 / 64.0  # ground-truth coordinates are multiples of this (exact in binary and in text)

# name -> (skimage.data function, crop (x, y, w, h) in that image, or None for the whole image,
#          RGB tint for grayscale images)
Source = tuple[str, tuple[int, int, int, int] | None, tuple[float, float, float] | None]

OBJECTS: dict[str, Source] = {
    "cat_face": ("chelsea", (95, 20, 300, 275), None),
    "astronaut_head": ("astronaut", (140, 5, 175, 195), None),
    "coffee_cup": ("coffee", (165, 12, 265, 300), None),
    "shuttle": ("astronaut", (355, 0, 110, 285), None),
}
BACKGROUNDS: dict[str, Source] = {
    "deep_field": ("hubble_deep_field", None, None),
    "launch_pad": ("rocket", None, None),
    "tissue": ("immunohistochemistry", None, None),
    "retina": ("retina", (250, 350, 900, 675), None),
    "brick": ("brick", None, (1.0, 0.72, 0.58)),
    "grass": ("grass", None, (0.72, 1.0, 0.55)),
    "gravel": ("gravel", None, (0.95, 0.9, 0.82)),
}
OCCLUDERS: dict[str, Source] = {
    "flag": ("astronaut", (0, 0, 75, 205), None),
    "wood": ("coffee", (440, 100, 150, 290), None),
    "brick": ("brick", (0, 0, 160, 512), (1.0, 0.72, 0.58)),
}

ImageSource = str | np.ndarray


@dataclass(frozen=True, eq=False)
class SampleConfig:
    """Everything that defines a sample video except the seed.

    ``object_source``, ``background_source`` and ``occluder_source`` are names from
    :data:`OBJECTS`, :data:`BACKGROUNDS`, :data:`OCCLUDERS` or uint8 image arrays (gray, RGB or RGBA;
    arrays are the test hook: a flat background and a flat object with ``mask='rect'`` make the
    ground truth checkable pixel by pixel). Make variants with ``dataclasses.replace`` or the keyword
    overrides of :func:`make_sample`.
    """
    name: str = "custom"
    size: tuple[int, int] = (320, 240)         # frame (W, H)
    n_frames: int = 60
    object_source: ImageSource = "cat_face"
    background_source: ImageSource = "deep_field"
    object_size: float = 0.3                   # sqrt(w*h) of the object at scale 1, / min(W, H)
    mask: str | np.ndarray = "ellipse"         # 'ellipse' (feathered superellipse), 'rect', or alpha array
    mask_power: float = 2.5                    # superellipse exponent (2 = ellipse, larger = boxier)
    feather: float = 0.15                      # width of the soft edge, in units of the half-size
    background_zoom: tuple[float, float] = (1.0, 1.3)  # random crop of the background photo
    # motion: centre = frame centre + u(t) * free range, u a sum of random sinusoids in [-1, 1]
    path_extent: float = 0.85                  # fraction of the free range the path may use
    cycles: float = 1.0                        # oscillations per 60 frames (speed independent of length)
    # scale: size multiplier between these bounds over the video (log-sinusoid, ~1 cycle)
    scale_range: tuple[float, float] = (1.0, 1.0)
    # occlusion: a patch of another photo slides over one side of the object and back out
    occluder_source: ImageSource | None = None
    occlusion_cover: tuple[float, float] = (0.35, 0.6)   # peak fraction of the box width covered
    occlusion_span: tuple[float, float] = (0.25, 0.75)   # part of the video the occlusion lasts
    # distractor: a mirrored, slightly recoloured copy of the object circling near the target
    distractor: bool = False
    distractor_gap: tuple[float, float] = (0.8, 1.4)     # centre distance, in object sizes
    # motion blur: kernel length = blur_gain * speed (px/frame), along the motion direction
    blur_gain: float = 0.0
    blur_max: int = 31
    # illumination: global gain and gamma, log-sinusoids over the video
    gain_range: tuple[float, float] = (1.0, 1.0)
    gamma_range: tuple[float, float] = (1.0, 1.0)
    noise_std: float = 2.0                     # Gaussian sensor noise (grey levels)


PRESETS: dict[str, SampleConfig] = {
    "translation": SampleConfig(name="translation", object_source="astronaut_head",
                                background_source="launch_pad"),
    "scale": SampleConfig(name="scale", object_source="cat_face", background_source="deep_field",
                          object_size=0.28, scale_range=(0.6, 1.6), cycles=0.6),
    "occlusion": SampleConfig(name="occlusion", object_source="coffee_cup", background_source="grass",
                              occluder_source="flag", cycles=0.8),
    "distractor": SampleConfig(name="distractor", object_source="cat_face", background_source="tissue",
                               object_size=0.26, distractor=True, cycles=0.8),
    "blur": SampleConfig(name="blur", object_source="shuttle", background_source="deep_field",
                         cycles=1.6, blur_gain=1.2, blur_max=25),
    "illumination": SampleConfig(name="illumination", object_source="astronaut_head",
                                 background_source="brick", gain_range=(0.5, 1.45),
                                 gamma_range=(0.8, 1.3)),
}


@dataclass
class SampleVideo:
    """A generated video: frames (uint8 RGB), exact 0-based xywh ground truth, and per-frame facts.

    ``info`` holds per-frame arrays (``scale``, ``occlusion`` = covered fraction of the box width,
    ``blur`` = kernel length in px, ``gain``, ``gamma``, ``distractor`` = its box) plus ``seed``.
    """
    name: str
    frames: list[np.ndarray]
    groundtruth: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (negative indices count from the end)."""
        if not -len(self.frames) <= i < len(self.frames):
            raise MetaRTTError(f"frame {i} out of range: sample {self.name!r} has {len(self.frames)} frames")
        return self.frames[i]

    def frames_iter(self) -> Iterator[np.ndarray]:
        return iter(self.frames)

    @property
    def init_box(self) -> np.ndarray:
        """The first frame's box (what a tracker is initialised with)."""
        return self.groundtruth[0].copy()

    @property
    def frame_size(self) -> tuple[int, int]:
        """(W, H)."""
        h, w = self.frames[0].shape[:2]
        return (w, h)


def list_presets() -> list[str]:
    """Names of the presets, in a fixed order."""
    return list(PRESETS)


def sample_names() -> list[str]:
    """Same as :func:`list_presets` (the name the notebooks use)."""
    return list_presets()


# ---------------------------------------------------------------------------------------------------
# image sources

@lru_cache(maxsize=32)
def _load_source(kind: str, name: str) -> np.ndarray:
    """A named crop of a scikit-image data photo as read-only uint8 RGB (cached)."""
    table = {"object": OBJECTS, "background": BACKGROUNDS, "occluder": OCCLUDERS}[kind]
    if name not in table:
        raise MetaRTTError(f"unknown {kind} source {name!r}; choose one of {', '.join(table)}")
    import skimage.data
    func, crop, tint = table[name]
    img = as_rgb(getattr(skimage.data, func)(), f"skimage.data.{func}()", allow_float=False, min_side=2)
    if crop is not None:
        x, y, w, h = crop
        img = img[y:y + h, x:x + w]
    if tint is not None:
        img = np.clip(img.astype(np.float32) * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img)
    img.setflags(write=False)
    return img


def _source(src: ImageSource, kind: str) -> np.ndarray:
    if isinstance(src, str):
        return _load_source(kind, src)
    return as_rgb(src, f"{kind} image", allow_float=False, min_side=2)


def _shape_mask(h: int, w: int, mask: str | np.ndarray, power: float, feather: float) -> np.ndarray:
    """Alpha in [0, 1] of shape (h, w) for the object crop."""
    if isinstance(mask, np.ndarray):
        a = np.asarray(mask, dtype=np.float32)
        if a.shape != (h, w):
            raise MetaRTTError(f"mask shape {a.shape} does not match the object image {(h, w)}")
        return np.clip(a / 255.0 if mask.dtype == np.uint8 else a, 0, 1)
    if mask == "rect":
        return np.ones((h, w), np.float32)
    if mask != "ellipse":
        raise MetaRTTError(f"unknown mask {mask!r}; use 'ellipse', 'rect' or an alpha array")
    u = np.abs((np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1)[None, :]
    v = np.abs((np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1)[:, None]
    r = (u ** power + v ** power) ** (1.0 / power)
    return np.clip((1.0 - r) / max(feather, 1e-3), 0, 1).astype(np.float32)


def _premultiplied(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(h, w, 4) float32: RGB * alpha and alpha."""
    return np.concatenate([rgb.astype(np.float32) * alpha[:, :, None], alpha[:, :, None]], axis=2)


def _background(src: np.ndarray, size: tuple[int, int], zoom: float, pos: np.ndarray) -> np.ndarray:
    """Crop ``src`` to the frame's aspect (1/zoom of the largest such crop, at relative ``pos``), resize."""
    W, H = size
    h, w = src.shape[:2]
    cw, ch = (w, w * H / W) if w * H / W <= h else (h * W / H, h)
    cw, ch = max(1, int(round(cw / zoom))), max(1, int(round(ch / zoom)))
    x0 = int(round(pos[0] * (w - cw)))
    y0 = int(round(pos[1] * (h - ch)))
    crop = src[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if cw >= W else cv2.INTER_LINEAR
    return cv2.resize(crop, (W, H), interpolation=interp).astype(np.float32)


def _warp_into(layer: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Place a premultiplied (h, w, C) layer exactly onto the continuous box [x, y, w, h] of a W×H frame.

    Pixel (i, j) covers [j, j+1) × [i, i+1), so the layer's rectangle [0, lw] × [0, lh] lands on
    [x, x+w] × [y, y+h]. The layer is first area-resized to about the target size so shrinking does
    not alias, then warped with a sub-pixel affine map; outside the layer everything is 0. With the
    layer's scale close to 1 bilinear weights equal the pixels' area coverage at the box edges.
    """
    W, H = size
    x, y, w, h = (float(v) for v in box)
    # resize to ceil(size): then the scale s >= 1 and fully covered pixels never sample the zero border
    rw, rh = max(1, int(np.ceil(w - 1e-6))), max(1, int(np.ceil(h - 1e-6)))
    lh, lw = layer.shape[:2]
    if (rw, rh) != (lw, lh):
        interp = cv2.INTER_AREA if rw < lw or rh < lh else cv2.INTER_LINEAR
        layer = cv2.resize(layer, (rw, rh), interpolation=interp)
    sx, sy = rw / w, rh / h  # frame px -> layer px
    # layer index = s * (frame index + 0.5 - x) - 0.5  (inverse map, pixel centres at +0.5)
    M = np.array([[sx, 0.0, sx * (0.5 - x) - 0.5], [0.0, sy, sy * (0.5 - y) - 0.5]])
    out = cv2.warpAffine(layer, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    return out if out.ndim == 3 else out[:, :, None]


def _composite(frame: np.ndarray, layer: np.ndarray) -> None:
    """In place: frame = layer_rgb + frame * (1 - layer_alpha) (premultiplied 'over')."""
    a = layer[:, :, 3:4]
    frame *= 1.0 - a
    frame += layer[:, :, :3]


def _motion_kernel(vx: float, vy: float, length: float) -> np.ndarray | None:
    """Normalised line kernel of ``length`` px along (vx, vy); None when shorter than 1.5 px."""
    if length < 1.5:
        return None
    k = int(np.ceil(length)) | 1
    img = np.zeros((k * 4, k * 4), np.float32)  # draw at 4x and area-downsample: anti-aliased line
    c = (k * 4 - 1) / 2.0
    n = max(np.hypot(vx, vy), 1e-9)
    dx, dy = vx / n * length * 2, vy / n * length * 2
    p0 = (int(round((c - dx) * 16)), int(round((c - dy) * 16)))
    p1 = (int(round((c + dx) * 16)), int(round((c + dy) * 16)))
    cv2.line(img, p0, p1, 1.0, thickness=4, lineType=cv2.LINE_AA, shift=4)
    ker = cv2.resize(img, (k, k), interpolation=cv2.INTER_AREA)
    s = float(ker.sum())
    return ker / s if s > 0 else None


def _quantize(v: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(v, dtype=np.float64) / QUANTUM) * QUANTUM


def _smooth_path(rng: np.random.Generator, n: int, cycles: float, n_terms: int = 3) -> np.ndarray:
    """(n, 2) smooth random path in [-1, 1]²: a normalised sum of sinusoids per axis."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros((n, 2))
    for axis in range(2):
        amps = rng.uniform(0.3, 1.0, n_terms) / np.arange(1, n_terms + 1)
        freqs = cycles * rng.uniform(0.6, 1.4, n_terms) * np.arange(1, n_terms + 1) / 60.0
        phases = rng.uniform(0, 2 * np.pi, n_terms)
        out[:, axis] = (amps[None] * np.sin(2 * np.pi * freqs[None] * t[:, None] + phases[None])).sum(1) / amps.sum()
    return out


def _log_sinusoid(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """(n,) values between ``lo`` and ``hi`` (geometric), ~one slow oscillation over the video."""
    if lo == hi:
        return np.full(n, float(lo))
    mid, amp = (np.log(lo) + np.log(hi)) / 2, (np.log(hi) - np.log(lo)) / 2 * rng.uniform(0.9, 1.0)
    cyc = rng.uniform(0.8, 1.25)
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(n) / max(n - 1, 1)
    return np.exp(mid + amp * np.sin(2 * np.pi * cyc * t + phase))


# ---------------------------------------------------------------------------------------------------
# the generator

def _resolve(preset: str | SampleConfig, n_frames: int | None, size: tuple[int, int] | None,
             overrides: dict[str, Any]) -> SampleConfig:
    if isinstance(preset, SampleConfig):
        cfg = preset
    elif isinstance(preset, str) and preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise MetaRTTError(f"unknown sample preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if n_frames is not None:
        overrides["n_frames"] = n_frames
    if size is not None:
        overrides["size"] = size
    names = {f.name for f in dataclasses.fields(SampleConfig)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise MetaRTTError(f"unknown sample option(s) {', '.join(bad)}; valid: {', '.join(sorted(names))}")
    cfg = dataclasses.replace(cfg, **overrides)
    try:
        W, H = (int(v) for v in cfg.size)
    except (TypeError, ValueError):
        raise MetaRTTError(f"size must be (W, H), got {cfg.size!r}") from None
    if W < 16 or H < 16:
        raise MetaRTTError(f"frame size {W}x{H} is too small (min 16x16)")
    if int(cfg.n_frames) < 1:
        raise MetaRTTError(f"n_frames must be at least 1, got {cfg.n_frames}")
    if not 0 < cfg.object_size <= 1:
        raise MetaRTTError(f"object_size must be in (0, 1], got {cfg.object_size}")
    lo, hi = cfg.scale_range
    if not 0 < lo <= hi:
        raise MetaRTTError(f"scale_range must be 0 < lo <= hi, got {cfg.scale_range}")
    return dataclasses.replace(cfg, size=(W, H), n_frames=int(cfg.n_frames))


def make_sample(preset: str | SampleConfig = "translation", seed: int = 0, n_frames: int | None = None,
                size: tuple[int, int] | None = None, **overrides: Any) -> SampleVideo:
    """Render a sample video from a preset name (or a :class:`SampleConfig`) and a seed.

    ``n_frames`` and ``size`` (W, H) override the preset's; any other :class:`SampleConfig` field can
    be overridden by keyword (e.g. ``background_source=np.full((240, 320, 3), 90, np.uint8)``).
    Each random component (background crop, path, scale, occlusion, distractor, illumination, noise)
    draws from its own stream of (seed, config name), so switching one effect off with an override
    leaves the others unchanged.
    """
    cfg = _resolve(preset, n_frames, size, dict(overrides))
    W, H = cfg.size
    N = cfg.n_frames
    salt = zlib.crc32(cfg.name.encode())  # different presets move differently for the same seed
    streams = [np.random.default_rng([int(seed) & 0xFFFFFFFF, salt, k]) for k in range(8)]
    r_bg, r_path, r_scale, r_occ, r_dis, r_light, r_noise, r_obj = streams

    # images
    obj_rgb = _source(cfg.object_source, "object")
    oh, ow = obj_rgb.shape[:2]
    obj_layer = _premultiplied(obj_rgb, _shape_mask(oh, ow, cfg.mask, cfg.mask_power, cfg.feather))
    bg_src = _source(cfg.background_source, "background")
    background = _background(bg_src, (W, H), r_bg.uniform(*cfg.background_zoom), r_bg.random(2))

    # sizes: base size from object_size, shrunk if the largest scale would not fit the frame
    scale = _log_sinusoid(r_scale, N, *cfg.scale_range)
    side = cfg.object_size * min(W, H)
    base = np.array([side * np.sqrt(ow / oh), side * np.sqrt(oh / ow)])
    base *= min(1.0, 0.9 * W / (base[0] * scale.max()), 0.9 * H / (base[1] * scale.max()))
    wh = _quantize(np.maximum(base[None] * scale[:, None], 2.0))

    # centre path: u in [-1, 1]² mapped onto the free range of each frame (box always inside)
    u = _smooth_path(r_path, N, cfg.cycles) * cfg.path_extent
    free = np.array([W, H])[None] - wh
    xy = _quantize(free / 2 + u * free / 2)
    xy = np.clip(xy, 0, np.array([W, H])[None] - wh)
    gt = np.concatenate([xy, wh], axis=1)
    centres = xy + wh / 2

    info: dict[str, Any] = {"seed": int(seed), "preset": cfg.name, "scale": scale,
                            "occlusion": np.zeros(N), "blur": np.zeros(N),
                            "gain": np.ones(N), "gamma": np.ones(N)}

    # distractor: mirrored, recoloured copy circling the target at a random distance
    dis_boxes = None
    if cfg.distractor:
        dis_rgb = np.clip(obj_rgb[:, ::-1].astype(np.float32) * r_dis.uniform(0.85, 1.1, 3), 0, 255)
        dis_layer = _premultiplied(dis_rgb, _shape_mask(oh, ow, cfg.mask, cfg.mask_power, cfg.feather)[:, ::-1])
        dscale = r_dis.uniform(0.85, 1.0)
        gap = r_dis.uniform(*cfg.distractor_gap) * np.sqrt(wh[:, 0] * wh[:, 1])
        theta = r_dis.uniform(0, 2 * np.pi) + r_dis.choice([-1, 1]) * r_dis.uniform(1.0, 2.0) \
            * 2 * np.pi * np.arange(N) / 60.0
        dwh = wh * dscale
        dc = centres + gap[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        dxy = np.clip(dc - dwh / 2, 0, np.array([W, H])[None] - dwh)
        dis_boxes = np.concatenate([dxy, dwh], axis=1)
        info["distractor"] = dis_boxes

    # occlusion: one event, the occluder slides in from one side to a peak cover and back out
    occ_layer = None
    if cfg.occluder_source is not None:
        occ_rgb = _source(cfg.occluder_source, "occluder")
        occ_layer = _premultiplied(occ_rgb, np.ones(occ_rgb.shape[:2], np.float32))
        s0, s1 = cfg.occlusion_span
        span = (s1 - s0) * r_occ.uniform(0.8, 1.0)
        t0 = (s0 + r_occ.uniform(0, (s1 - s0) - span)) * (N - 1)
        t1 = t0 + span * (N - 1)
        peak = r_occ.uniform(*cfg.occlusion_cover)
        from_left = bool(r_occ.random() < 0.5)
        occ_w, occ_h, occ_dy = r_occ.uniform(0.6, 0.9), r_occ.uniform(1.2, 1.5), r_occ.uniform(-0.1, 0.1)
        t = np.arange(N)
        tau = np.clip((t - t0) / max(t1 - t0, 1e-9), 0, 1)
        info["occlusion"] = np.where((t > t0) & (t < t1), peak * np.sin(np.pi * tau), 0.0)

    # motion blur: along the centre velocity (central differences)
    if cfg.blur_gain > 0 and N > 1:
        vel = np.gradient(centres, axis=0)
        info["blur"] = np.minimum(cfg.blur_gain * np.hypot(vel[:, 0], vel[:, 1]), cfg.blur_max)
    else:
        vel = np.zeros((N, 2))

    # illumination
    info["gain"] = _log_sinusoid(r_light, N, *cfg.gain_range)
    info["gamma"] = _log_sinusoid(r_light, N, *cfg.gamma_range)

    frames: list[np.ndarray] = []
    for i in range(N):
        img = background.copy()
        if dis_boxes is not None:
            _composite(img, _warp_into(dis_layer, dis_boxes[i], (W, H)))
        layer = _warp_into(obj_layer, gt[i], (W, H))
        ker = _motion_kernel(vel[i, 0], vel[i, 1], info["blur"][i])
        if ker is not None:
            layer = cv2.filter2D(layer, -1, ker, borderType=cv2.BORDER_CONSTANT)
        _composite(img, layer)
        cover = info["occlusion"][i]
        if occ_layer is not None and cover > 0:
            x, y, w, h = gt[i]
            ow_, oh_ = occ_w * w, occ_h * h
            ox = x - ow_ + cover * w if from_left else x + w - cover * w
            oy = y + h / 2 - oh_ / 2 + occ_dy * h
            _composite(img, _warp_into(occ_layer, np.array([ox, oy, ow_, oh_]), (W, H)))
        g, gm = info["gain"][i], info["gamma"][i]
        if g != 1.0 or gm != 1.0:
            img = 255.0 * g * np.power(np.clip(img, 0, 255) / 255.0, gm)
        if cfg.noise_std > 0:
            img += r_noise.normal(0.0, cfg.noise_std, img.shape).astype(np.float32)
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))

    name = f"{cfg.name}_s{int(seed)}"
    return SampleVideo(name=name, frames=frames, groundtruth=gt.astype(np.float64), info=info)


# ---------------------------------------------------------------------------------------------------
# pseudo-videos from still images, OTB export

def make_still_pseudo_video(image: np.ndarray, box: Sequence[float], n_frames: int,
                            rng: np.random.Generator | int | None = None, max_scale: float = 1.3,
                            max_shift: float = 0.5, step_scale: float = 0.05,
                            step_shift: float = 0.08) -> tuple[list[np.ndarray], np.ndarray]:
    """A pseudo-video from one still image: a random walk of zoom and shift (Zhu et al. 2018, DaSiamRPN).

    Frame 0 is the image itself with ``box``; each later frame is the image scaled about its centre
    by ``s`` (|log s| <= log ``max_scale``) and shifted, with the border reflected, following a random
    walk (per-frame steps ``step_scale`` in log-scale and ``step_shift`` box sizes). The shift keeps
    the box inside the frame and within ``max_shift`` frame sizes of its start. Returns the frames (same
    size as ``image``) and the exact (n_frames, 4) xywh boxes.
    """
    img = as_rgb(image, "image", allow_float=False, min_side=2)
    H, W = img.shape[:2]
    b = validate_box(box, (W, H))
    if int(n_frames) < 1:
        raise MetaRTTError(f"n_frames must be at least 1, got {n_frames}")
    if max_scale < 1:
        raise MetaRTTError(f"max_scale must be >= 1, got {max_scale}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    # clip the box into the frame first: pseudo-video boxes are exact and inside the frame
    x0, y0 = max(b[0], 0.0), max(b[1], 0.0)
    b = np.array([x0, y0, min(b[0] + b[2], W) - x0, min(b[1] + b[3], H) - y0])
    size = np.array([W, H], np.float64)
    centre = size / 2  # zoom centre
    log_s, shift = 0.0, np.zeros(2)
    frames: list[np.ndarray] = [img.copy()]
    boxes = np.zeros((int(n_frames), 4))
    boxes[0] = b
    for i in range(1, int(n_frames)):
        log_s = float(np.clip(log_s + gen.normal(0, step_scale), -np.log(max_scale), np.log(max_scale)))
        shift = shift + gen.normal(0, step_shift, 2) * b[2:]
        s = min(float(np.exp(log_s)), W / b[2], H / b[3])  # the box must fit in the frame
        wh = b[2:] * s
        xy = centre + (b[:2] - centre) * s + shift
        hi = np.minimum(size - wh, b[:2] + max_shift * size)
        lo = np.minimum(np.maximum(0.0, b[:2] - max_shift * size), hi)
        xy_c = np.clip(xy, lo, hi)
        shift = shift + (xy_c - xy)
        boxes[i] = np.concatenate([xy_c, wh])
        # continuous map frame = s * image + t with t = new xy - s * old xy; warp with its inverse
        t = xy_c - s * b[:2]
        src = img
        if s < 0.9:  # shrink with area averaging first so it does not alias
            src = cv2.resize(img, (max(1, int(round(W * s))), max(1, int(round(H * s)))),
                             interpolation=cv2.INTER_AREA)
        kx, ky = src.shape[1] / W, src.shape[0] / H  # source px per image px
        M = np.array([[kx / s, 0.0, kx / s * (0.5 - t[0]) - 0.5],
                      [0.0, ky / s, ky / s * (0.5 - t[1]) - 0.5]])
        frames.append(cv2.warpAffine(src, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT_101))
    return frames, boxes


def make_target_leaves(preset: str = "translation", seed: int = 0, n_frames: int = 60,
                       gone_from: int = 35) -> SampleVideo:
    """A sample video whose target vanishes at frame ``gone_from``: the same render (background, camera,
    noise) with the object drawn fully transparent from then on, so only the target is missing. Ground
    truth after ``gone_from`` is NaN (absent, as GOT-10k marks it); ``info["present"]`` flags each frame."""
    if not 1 <= gone_from <= n_frames:
        raise MetaRTTError(f"gone_from must be in 1..{n_frames}, got {gone_from}")
    cfg = _resolve(preset, n_frames, None, {})
    obj = _source(cfg.object_source, "object")
    full = make_sample(cfg, seed=seed)
    empty = make_sample(cfg, seed=seed, mask=np.zeros(obj.shape[:2], np.float32))
    gt = full.groundtruth.copy()
    gt[gone_from:] = np.nan
    info = dict(full.info, present=np.arange(n_frames) < gone_from)
    return SampleVideo(f"{full.name}_gone{gone_from}", full.frames[:gone_from] + empty.frames[gone_from:], gt, info)


def _fmt(v: float) -> str:
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


def write_sample_as_otb(video: SampleVideo, folder: str | Path) -> Path:
    """Write ``video`` as an OTB sequence: ``folder/img/0001.jpg`` ... (JPEG quality 95) and
    ``folder/groundtruth_rect.txt`` (1-based, comma separated). Returns ``folder``.

    The ground truth is written exactly (multiples of 1/64 px), so reading it back and subtracting 1
    gives ``video.groundtruth`` again.
    """
    folder = Path(folder)
    img_dir = folder / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    for i, fr in enumerate(video.frames, start=1):
        path = img_dir / f"{i:04d}.jpg"
        ok = cv2.imwrite(str(path), cv2.cvtColor(fr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise MetaRTTError(f"could not write {path}")
    lines = [",".join(_fmt(v) for v in (b[0] + 1, b[1] + 1, b[2], b[3])) for b in video.groundtruth]

    def _w(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
    atomic_write(folder / "groundtruth_rect.txt", _w)
    return folder
