"""Configuration dataclasses, one per concern (model widths, tracking schedule)."""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any


@dataclass
class ModelConfig:
    """Network shape. The trunk is EfficientNet-Lite0 up to ``trunk_blocks`` stages (5 → stride 16,
    112 channels: see README "Choosing the trunk cut"); after it the shared conv (the paper's last
    shared conv, meta-learned and pruned), RoIAlign to ``roi_size``² and fc4–fc6."""
    trunk_blocks: int = 5
    crop_size: int = 256          # side of the square search crop fed to the trunk (px)
    target_size: float = 64.0     # sqrt(w·h) of the previous box inside the crop (px)
    shared_channels: int = 128    # out-channels of the shared conv
    fc_width: int = 256           # width of fc4 and fc5
    roi_size: int = 3             # RoIAlign output grid (3×3 as RT-MDNet)
    roi_presample: int = 6        # RoIAlign at 6×6, then 2×2 max-pool → 3×3 (RT-MDNet: 7×7 → pool)
    dropout: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SamplerSpec:
    """One RT-MDNet sample generator (``modules/sample_generator.py``): see :class:`boxes.SampleGenerator`."""
    kind: str
    trans: float
    scale: float
    aspect: float | None = None


@dataclass(frozen=True)
class SamplingConfig:
    """RT-MDNet's training-sample generators (options.py), one place for the tracker, pretraining and
    the meta-training episodes (which sample like the tracker's frame-1 positives, but draw negatives
    like pretraining)."""
    pos: SamplerSpec = SamplerSpec("gaussian", 0.1, 1.2)               # positives, everywhere
    neg: SamplerSpec = SamplerSpec("uniform", 1.5, 1.5, 1.1)           # negatives: pretraining, episodes
    neg_init: SamplerSpec = SamplerSpec("uniform", 1.0, 2.0, 1.1)      # tracker: frame-1 negatives
    neg_update: SamplerSpec = SamplerSpec("uniform", 1.5, 1.2)         # tracker: online-update negatives
    bbreg: SamplerSpec = SamplerSpec("uniform", 0.3, 1.5, 1.1)         # tracker: box-regression samples


SAMPLING = SamplingConfig()


@dataclass
class OptimConfig:
    """How the head is updated inside the tracker: a torch optimiser with hand-set rates
    (``kind`` 'sgd' or 'adam'), or 'meta' for the meta-learned per-parameter rates (paper Eqs. 2-3)."""
    kind: str = "sgd"
    lr_init: float = 1e-4
    lr_update: float = 3e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    fc6_lr_mult: float = 10.0
    grad_clip: float = 10.0


@dataclass
class TrackConfig:
    """RT-MDNet's tracking schedule (options.py), every count and rate in one place."""
    k_init: int = 50                  # K_init: iterations at the first frame
    k_on: int = 15                    # K_on: iterations per online update
    n_pos_init: int = 500
    n_neg_init: int = 2000
    init_augment_crops: int = 4       # extra shifted/scaled crops at frame 1 (RT-MDNet uses 7 + 100)
    n_pos_update: int = 50
    n_neg_update: int = 200
    n_candidates: int = 256
    search_size: int = 0              # px side of the per-frame search crop; 0: the model's crop_size
    top_k: int = 5
    trans_f: float = 0.6
    scale_f: float = 1.05
    trans_f_expand: float = 1.5
    success_thr: float = 0.0
    pos_iou_init: float = 0.7
    neg_iou_init: float = 0.3
    pos_iou_update: float = 0.7
    neg_iou_update: float = 0.3
    long_interval: int = 10
    n_frames_long: int = 100
    n_frames_short: int = 20
    batch_pos: int = 32
    batch_neg: int = 96
    batch_neg_cand: int = 1024
    hard_negative_mining: bool = True
    bbox_reg: bool = True
    bbreg_samples: int = 1000
    bbreg_alpha: float = 10.0        # ridge penalty relative to the features' energy (see tracker._fit_bbreg)
    bbreg_max_delta: float = 0.5     # clamp on predicted (dx/w, dy/h, log dw, log dh)
    max_update_failures: int = 3      # cap: consecutive failed frames that still trigger a short-term update
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
