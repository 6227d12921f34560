"""The trunk-feature cache. The trunk is frozen, so its output on a search crop around each training
frame's target is computed once and stored (float16, on disk under the project's cache folder, keyed by
sequence, frames and crop settings); pretraining and meta-training then run from the cache."""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.config import ModelConfig
from ..model.net import Crop, Trunk, crop_image, make_crop, to_tensor
from ..core.utils import MetaRTTError, atomic_torch_save, cache_dir


@dataclass
class CacheConfig:
    """Which frames are cached and how the crop is jittered (the crop is centred on a noisy target
    estimate during tracking, so training crops are too)."""
    frame_step: int = 2          # every n-th frame
    max_frames: int = 0          # 0 = no limit per sequence
    jitter_shift: float = 0.25   # crop-centre shift, × sqrt(w·h) × U(−1, 1)
    jitter_zoom: float = 1.2     # crop zoom ** U(−1, 1)
    seed: int = 0


@dataclass
class SequenceFeatures:
    """Cached trunk features of one sequence: one crop per kept frame."""
    name: str
    trunk: torch.Tensor        # (N, C, S, S) float16
    origins: np.ndarray        # (N, 2) crop origin in frame px
    scales: np.ndarray         # (N,)
    gt: np.ndarray             # (N, 4) 0-based xywh in frame px
    frame_sizes: np.ndarray    # (N, 2) (W, H)
    frame_index: np.ndarray    # (N,) index into the sequence
    distractors: np.ndarray | None = None  # (N, D, 4) boxes of pasted look-alikes (synthetic clips), else None
    source: str = ""           # the video the frames come from (a synthetic clip's source video)

    def __len__(self) -> int:
        return len(self.gt)

    def crop(self, i: int, crop_size: int) -> Crop:
        return Crop(origin=self.origins[i], scale=float(self.scales[i]), size=crop_size)


def _ident(seq, model_cfg: ModelConfig, cc: CacheConfig) -> dict:
    """What a cache entry was built from: the sequence (name, length, ground-truth hash) and the settings."""
    return {"name": seq.name, "n": len(seq),
            "gt": hashlib.sha1(np.nan_to_num(np.asarray(seq.groundtruth, dtype=np.float64), nan=-7).tobytes()).hexdigest(),
            "trunk_blocks": model_cfg.trunk_blocks, "crop": model_cfg.crop_size, "target": model_cfg.target_size,
            "cache": asdict(cc), "v": 2}


def _key(seq, model_cfg: ModelConfig, cc: CacheConfig) -> str:
    return hashlib.sha1(json.dumps(_ident(seq, model_cfg, cc), sort_keys=True).encode()).hexdigest()[:16]


def _check_entry(d: dict, ident: dict, seq) -> SequenceFeatures:
    """A loaded cache entry, after checking it is the one asked for (not truncated, not another sequence's)."""
    if json.loads(d.get("ident", "null") or "null") != ident:
        raise ValueError("it was built from another sequence or other settings")
    sf = SequenceFeatures(**{k: (v.numpy() if torch.is_tensor(v) and k != "trunk" else v)
                             for k, v in d.items() if k != "ident"})
    n = len(sf.frame_index)
    if not (sf.trunk.shape[0] == len(sf.gt) == len(sf.origins) == len(sf.scales) == len(sf.frame_sizes) == n) or n == 0:
        raise ValueError("its arrays have inconsistent lengths")
    gt = np.asarray(seq.groundtruth, dtype=np.float64)[sf.frame_index]
    if not np.allclose(gt, sf.gt):
        raise ValueError("its ground truth differs from the sequence's")
    if not torch.isfinite(sf.trunk.float()).all():
        raise ValueError("it holds non-finite features")
    return sf


def cache_sequence(seq, trunk: Trunk, model_cfg: ModelConfig, cc: CacheConfig | None = None,
                   root: Path | None = None, dev: torch.device | None = None) -> SequenceFeatures:
    """Trunk features for ``seq`` (an object with name, groundtruth, frame(i)), from disk if cached.

    A cache entry that cannot be read (truncated, corrupt) or that does not match ``seq`` and the settings
    (a foreign file under the expected name) is reported with a warning, deleted and rebuilt; it is never
    used."""
    cc = cc or CacheConfig()
    root = Path(root) if root else cache_dir() / "features"
    ident = _ident(seq, model_cfg, cc)
    path = root / f"{seq.name}-{_key(seq, model_cfg, cc)}.pt"
    if path.exists():
        try:
            return _check_entry(torch.load(path, map_location="cpu", weights_only=True), ident, seq)
        except Exception as e:
            warnings.warn(f"feature cache {path} is unusable ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                          f"rebuilding it", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
    dev = dev or next(trunk.buffers()).device
    rng = np.random.default_rng([cc.seed, int(hashlib.sha1(seq.name.encode()).hexdigest()[:8], 16)])
    gt_all = np.asarray(seq.groundtruth, dtype=np.float64)
    idx = [i for i in range(0, len(seq), max(cc.frame_step, 1)) if np.all(np.isfinite(gt_all[i])) and gt_all[i, 2] > 0 and gt_all[i, 3] > 0]
    if cc.max_frames:
        idx = idx[: cc.max_frames]
    if not idx:
        raise MetaRTTError(f"sequence {seq.name} has no frame with a valid ground-truth box to train on")
    feats, origins, scales, sizes = [], [], [], []
    for i in tqdm(idx, desc=f"cache {seq.name}", leave=False):
        frame = seq.frame(i)
        box = gt_all[i]
        side = np.sqrt(box[2] * box[3])
        crop = make_crop(box, model_cfg, zoom=cc.jitter_zoom ** rng.uniform(-1, 1),
                         shift=tuple(rng.uniform(-1, 1, 2) * cc.jitter_shift * side))
        with torch.no_grad():
            feats.append(trunk(to_tensor(crop_image(frame, crop), dev)).half().cpu())
        origins.append(crop.origin)
        scales.append(crop.scale)
        sizes.append((frame.shape[1], frame.shape[0]))
    d = dict(name=seq.name, trunk=torch.cat(feats), origins=np.array(origins), scales=np.array(scales),
             gt=gt_all[idx], frame_sizes=np.array(sizes), frame_index=np.array(idx))
    saved = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in d.items()}
    saved["ident"] = json.dumps(ident, sort_keys=True)
    atomic_torch_save(path, saved)
    return SequenceFeatures(**d)
