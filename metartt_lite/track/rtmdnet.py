"""The tracker: an OpenCV-like ``init(frame, box)`` / ``update(frame) -> (box, score)`` object running
RT-MDNet's procedure (Jung et al. 2018) on :class:`~metartt_lite.model.net.TrackerNet`.

Per frame: one search crop around the previous box → trunk + shared conv once → RoIAlign of
``n_candidates`` Gaussian candidates → fc4–fc6 scores → the mean of the top-5 boxes, refined by a ridge
bounding-box regressor fitted at frame 1. The head (fc4–fc6) is trained at frame 1 for K_init
iterations and updated for K_on iterations every ``long_interval`` frames (long-term) or when the score
falls below ``success_thr`` (short-term), from a bounded memory of RoI features.
"""
from __future__ import annotations

import contextlib
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..core import boxes as bx
from ..train.inner_loop import HeadOptimizer, MetaRateOptimizer
from ..core.config import SAMPLING, ModelConfig, TrackConfig
from ..data.sequences import as_rgb
from ..train.losses import pos_neg_ce
from ..model.net import Crop, TrackerNet, crop_image, make_crop, to_tensor
from ..model.roi_kernel import warm_up as warm_up_roi_kernel
from ..core.utils import MetaRTTError, device as default_device


# the clock of the per-stage times (``FrameTimes``); benchmarks/profile_tracker.py may set it to
# ``time.process_time`` (CPU time, which a loaded machine disturbs less than wall time)
clock = time.perf_counter


@dataclass
class FrameTimes:
    """Per-frame time split (s), filled by the tracker for profiling."""
    crop: float = 0.0
    trunk: float = 0.0
    scoring: float = 0.0
    roi: float = 0.0      # RoIAlign, inside ``scoring`` and ``collect`` (not added to the total again)
    bbreg: float = 0.0
    collect: float = 0.0
    update: float = 0.0


class RTMDNetTracker:
    """RT-MDNet-style tracker; ``name`` is the preset it was made from."""

    def __init__(self, net: TrackerNet, cfg: TrackConfig | None = None, name: str = "rtmdnet",
                 seed: int = 0, meta_rates: tuple[list, list] | None = None, dev: torch.device | None = None):
        self.cfg = cfg or TrackConfig()
        self.name = name
        self.seed = seed
        self.device = dev or default_device()
        self.net = net.to(self.device)
        self.meta_rates = meta_rates
        self.times = FrameTimes()
        self.frame_size: tuple[int, int] | None = None
        if self.device.type == "cpu":  # one-off builds belong to building the tracker, not to init()
            warm_up_roi_kernel()   # the RoIAlign kernel's compile / cache load
            self._warm_up_trunk()  # the frozen trunk, built once per process and crop shape

    def _warm_up_trunk(self) -> None:
        """Build the trunk's frozen copy (``Trunk.frozen_forward``, ~0.5 s, once per process and shape) for
        the first-frame and per-frame crop shapes, so that no tracker's ``init`` time includes it."""
        frozen = getattr(self.net.trunk, "frozen_forward", None)
        if frozen is None:  # a stub trunk: nothing to build
            return
        for side in {self.net.cfg.crop_size, self._search_crop_cfg().crop_size}:
            frozen(torch.zeros(1, 3, side, side, device=self.device))

    def _search_crop_cfg(self) -> ModelConfig:
        """The per-frame search crop: the model's crop, or a smaller one at the same target scale
        (``search_size``: less trunk work per frame; the first frame keeps the full crop)."""
        side = self.cfg.search_size
        return replace(self.net.cfg, crop_size=side) if side else self.net.cfg

    # -- features ----------------------------------------------------------------------------------
    def _feature_map(self, frame: np.ndarray, crop: Crop) -> torch.Tensor:
        t0 = clock()
        img = to_tensor(crop_image(frame, crop), self.device)
        t1 = clock()
        with torch.inference_mode():  # the frozen trunk's output is never differentiated
            trunk = getattr(self.net.trunk, "frozen_forward", self.net.trunk)(img)  # a stub trunk: eager
        with torch.no_grad():
            fmap = self.net.shared_forward(trunk)
        self.times.crop += t1 - t0
        self.times.trunk += clock() - t1
        return fmap

    def _roi(self, fmap: torch.Tensor, crop: Crop, boxes: np.ndarray) -> torch.Tensor:
        t0 = clock()
        with torch.no_grad():
            out = self.net.roi_features(fmap, crop.to_crop(boxes))
        self.times.roi += clock() - t0
        return out

    def _logit(self, feats: torch.Tensor) -> torch.Tensor:
        """Positive score as RT-MDNet: the fc6 output for the target class (index 1)."""
        self.net.head.eval()
        with torch.no_grad():
            return self.net.head_forward(feats, self.params)[:, 1]

    # -- training ------------------------------------------------------------------------------------
    def _rng_devices(self) -> list[int]:
        if self.device.type != "cuda":
            return []
        return [self.device.index if self.device.index is not None else torch.cuda.current_device()]

    def _seeded_rng_state(self, seed: int) -> tuple:
        """The global torch RNG state(s) ``manual_seed(seed)`` gives, without touching the global RNG."""
        devs = self._rng_devices()
        with torch.random.fork_rng(devices=devs):
            torch.manual_seed(seed)
            return torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devs]

    @contextlib.contextmanager
    def _own_rng(self):
        """Run with this tracker's private dropout stream as the global torch RNG (which is restored after):
        trackers and the caller's code do not draw from, or disturb, each other's random numbers."""
        devs = self._rng_devices()
        with torch.random.fork_rng(devices=devs):
            cpu, cuda = self._dropout_rng
            torch.set_rng_state(cpu)
            for d, s in zip(devs, cuda):
                torch.cuda.set_rng_state(s, d)
            try:
                yield
            finally:
                self._dropout_rng = torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devs]

    def _train(self, pos: torch.Tensor, neg: torch.Tensor, iters: int, phase: str) -> None:
        with self._own_rng():
            self._train_steps(pos, neg, iters, phase)

    def _train_steps(self, pos: torch.Tensor, neg: torch.Tensor, iters: int, phase: str) -> None:
        c = self.cfg
        if len(pos) == 0 or len(neg) == 0 or iters <= 0:
            return
        # the index draws come from the tracker's CPU generator (the same numbers on every device) and
        # are moved to the features' device, so indices and indexed tensors always share one device
        g, dev = self.torch_gen, pos.device
        for k in range(iters):
            pi = torch.randint(len(pos), (min(c.batch_pos, len(pos)),), generator=g).to(dev)
            if c.hard_negative_mining and len(neg) > c.batch_neg:
                cand = torch.randperm(len(neg), generator=g)[: c.batch_neg_cand].to(dev)
                hard = torch.topk(self._logit(neg[cand]), min(c.batch_neg, len(cand))).indices
                ni = cand[hard]
            else:
                ni = torch.randperm(len(neg), generator=g)[: c.batch_neg].to(dev)
            self.net.head.train()
            scores = self.net.head_forward(torch.cat([pos[pi], neg[ni]]), self.params)
            loss = pos_neg_ce(scores[: len(pi)], scores[len(pi):])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.name}: non-finite loss during {phase} update")
            self.optimizer.step(loss, phase, k)
        self.net.head.eval()

    @property
    def _bb_dtype(self) -> torch.dtype:
        """float64 where the device has it (CPU, CUDA); MPS has no float64: float32 there."""
        return torch.float32 if self.device.type == "mps" else torch.float64

    def _fit_bbreg(self, feats: torch.Tensor, boxes: np.ndarray, gt: np.ndarray) -> None:
        """Ridge regression (RT-MDNet: sklearn Ridge(alpha=1000)) from RoI features to box deltas.
        The (tiny) solve runs in float64 on the CPU on every device; the result moves to the features'
        device (in float64 where that device has it)."""
        X = feats.detach().cpu().double()
        mean = X.mean(0, keepdim=True)
        X = X - mean
        Y = torch.from_numpy(bx.box_regression_targets(boxes, gt)).to(X)
        # ridge with the penalty relative to the features' mean energy (RT-MDNet: Ridge(alpha=1000) on
        # raw conv features); no per-dimension standardisation: ReLU columns that are ~0 at frame 1
        # would be blown up at later frames
        scale = (X * X).sum() / X.shape[1]
        A = X.T @ X + self.cfg.bbreg_alpha * scale / len(X) * torch.eye(X.shape[1], dtype=X.dtype)
        W = torch.linalg.solve(A, X.T @ (Y - Y.mean(0)))
        to = dict(device=feats.device, dtype=self._bb_dtype)
        self.bb_mean, self.bb_W, self.bb_b = mean.to(**to), W.to(**to), Y.mean(0).to(**to)

    def _apply_bbreg(self, feats: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        X = feats.to(self.bb_W.dtype) - self.bb_mean
        d = (X @ self.bb_W + self.bb_b).clamp(-self.cfg.bbreg_max_delta, self.cfg.bbreg_max_delta).cpu().numpy()
        return bx.apply_box_regression(boxes, d)

    # -- public API ----------------------------------------------------------------------------------
    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        """Initialise on the first frame with the target ``box`` (xywh, 0-based)."""
        self.frame_size = None  # until init succeeds, update() refuses (no half-initialised state)
        frame = as_rgb(frame)
        H, W = frame.shape[:2]
        box = bx.validate_box(box, (W, H), what="initial box")
        box = bx.clip_boxes(box, (W, H))
        c = self.cfg
        self.rng = np.random.default_rng(self.seed)
        self.torch_gen = torch.Generator().manual_seed(self.seed)
        self._dropout_rng = self._seeded_rng_state(self.seed)  # dropout's stream, private to this tracker
        self.times = FrameTimes()
        # fresh adaptable parameters for this video: θ0 (copied; the shared net is never modified)
        self.params = OrderedDict((k, v.detach().clone().requires_grad_(True)) for k, v in self.net.head_params().items())
        if c.optim.kind == "meta":
            if self.meta_rates is None:
                raise MetaRTTError(f"tracker {self.name!r} uses meta-learned rates but none were loaded")
            self.optimizer = MetaRateOptimizer(self.params, *self.meta_rates)
        else:
            self.optimizer = HeadOptimizer(self.params, c)

        pos_feats, neg_feats = [], []
        crops = [(1.0, (0.0, 0.0))]
        side = np.sqrt(box[2] * box[3])
        for j in range(c.init_augment_crops):
            zoom = 1.1 ** float(self.rng.integers(-2, 3))
            shift = tuple(self.rng.uniform(-0.05, 0.05, 2) * side)
            crops.append((zoom, shift))
        n = len(crops)
        base_fmap, base_crop = None, None
        for i, (zoom, shift) in enumerate(crops):
            crop = make_crop(box, self.net.cfg, zoom, shift)
            fmap = self._feature_map(frame, crop)
            if i == 0:
                base_fmap, base_crop = fmap, crop
            pos = bx.sample_by_iou(bx.sampler(SAMPLING.pos, (W, H)), box,
                                   -(-c.n_pos_init // n), (c.pos_iou_init, 1.0), self.rng)
            neg = bx.sample_by_iou(bx.sampler(SAMPLING.neg_init, (W, H)), box,
                                   -(-c.n_neg_init // n), (0.0, c.neg_iou_init), self.rng)
            if len(pos):
                pos_feats.append(self._roi(fmap, crop, pos))
            if len(neg):
                neg_feats.append(self._roi(fmap, crop, neg))
        if not pos_feats or not neg_feats:
            raise MetaRTTError(f"could not sample positive/negative examples around the initial box {box.tolist()} "
                               f"in a {W}x{H} frame")
        pos_f, neg_f = torch.cat(pos_feats), torch.cat(neg_feats)
        self._train(pos_f, neg_f, c.k_init, "init")

        if c.bbox_reg:
            bb = bx.sample_by_iou(bx.sampler(SAMPLING.bbreg, (W, H)), box,
                                  c.bbreg_samples, (0.6, 1.0), self.rng)
            self.use_bbreg = len(bb) >= 8
            if self.use_bbreg:
                self._fit_bbreg(self._roi(base_fmap, base_crop, bb), bb, box)
        else:
            self.use_bbreg = False
        keep_p = torch.randperm(len(pos_f), generator=self.torch_gen)[: c.n_pos_update].to(pos_f.device)
        keep_n = torch.randperm(len(neg_f), generator=self.torch_gen)[: c.n_neg_update].to(neg_f.device)
        self.pos_mem: deque = deque([pos_f[keep_p]], maxlen=c.n_frames_long)
        self.neg_mem: deque = deque([neg_f[keep_n]], maxlen=c.n_frames_short)
        self.box = box
        self.frame_index = 0
        self.trans_f = c.trans_f
        self.failures = 0
        self.last_score = float("inf")
        self._search_cfg = self._search_crop_cfg()
        self.success_threshold = c.success_thr  # what ``success`` compares the score with (see update)
        self.success: bool | None = None        # set by every update()
        self.frame_size = (W, H)

    def _reference_score(self, frame: np.ndarray, box: np.ndarray) -> float:
        """The score update() would give the first frame at its known box: the top-k mean target logit of
        Gaussian candidates around ``box`` in the search crop. Uses a private generator, so the tracker's
        own random streams (and hence its boxes) are untouched."""
        c = self.cfg
        W, H = self.frame_size if self.frame_size is not None else (frame.shape[1], frame.shape[0])
        rng = np.random.default_rng([self.seed, 0x5C0E])
        crop = make_crop(box, self._search_crop_cfg())
        fmap = self._feature_map(frame, crop)
        cand = bx.SampleGenerator("gaussian", (W, H), c.trans_f, c.scale_f, valid=True)(box, c.n_candidates, rng)
        scores = self._logit(self._roi(fmap, crop, cand))
        return float(torch.topk(scores, min(c.top_k, len(scores))).values.mean())

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """Track one frame; returns the box (xywh, 0-based, inside the frame) and its score: the target
        logit of the top candidates; the procedure calls the frame a success when ``score > success_thr``
        (0, RT-MDNet's test; else the search widens). ``self.success`` is the user's flag: ``score >
        self.success_threshold``, which is ``success_thr`` here and calibrated for the pruned tracker."""
        if self.frame_size is None:
            raise MetaRTTError("update() called before init()")
        frame = as_rgb(frame)
        H, W = frame.shape[:2]
        if (W, H) != self.frame_size:  # frames of changing size: rescale the state into the new frame
            sx, sy = W / self.frame_size[0], H / self.frame_size[1]
            self.box = self.box * np.array([sx, sy, sx, sy])
            self.frame_size = (W, H)
        self.box = bx.clip_boxes(self.box, (W, H))
        c = self.cfg
        self.frame_index += 1
        crop = make_crop(self.box, self._search_cfg)
        fmap = self._feature_map(frame, crop)

        t0 = clock()
        cand = bx.SampleGenerator("gaussian", (W, H), self.trans_f, c.scale_f, valid=True)(self.box, c.n_candidates, self.rng)
        feats = self._roi(fmap, crop, cand)
        scores = self._logit(feats)
        top_t = torch.topk(scores, min(c.top_k, len(scores))).indices  # on the net's device
        top = top_t.cpu().numpy()                                       # for the NumPy candidate boxes
        target = cand[top].mean(0)
        score = float(scores[top_t].mean())
        success = score > c.success_thr
        t1 = clock()
        self.times.scoring += t1 - t0

        if success and self.use_bbreg:
            result = self._apply_bbreg(feats[top_t], cand[top]).mean(0)
        else:
            result = target
        result = bx.clip_boxes(result, (W, H))
        if not np.all(np.isfinite(result)):
            result = self.box.copy()
        t2 = clock()
        self.times.bbreg += t2 - t1

        self.trans_f = c.trans_f if success else c.trans_f_expand
        self.box = bx.clip_boxes(target, (W, H))

        if success:
            self.failures = 0
            pos = bx.sample_by_iou(bx.sampler(SAMPLING.pos, (W, H)), self.box,
                                   c.n_pos_update, (c.pos_iou_update, 1.0), self.rng)
            neg = bx.sample_by_iou(bx.sampler(SAMPLING.neg_update, (W, H)), self.box,
                                   c.n_neg_update, (0.0, c.neg_iou_update), self.rng)
            if len(pos):
                self.pos_mem.append(self._roi(fmap, crop, pos))
            if len(neg):
                self.neg_mem.append(self._roi(fmap, crop, neg))
        else:
            self.failures += 1
        t3 = clock()
        self.times.collect += t3 - t2

        if not success and self.failures <= c.max_update_failures:  # short-term update (capped)
            pos = torch.cat(list(self.pos_mem)[-c.n_frames_short:])
            self._train(pos, torch.cat(list(self.neg_mem)), c.k_on, "on")
        elif self.frame_index % c.long_interval == 0:  # long-term update
            self._train(torch.cat(list(self.pos_mem)), torch.cat(list(self.neg_mem)), c.k_on, "on")
        self.times.update += clock() - t3
        self.last_score = score
        self.success = score > self.success_threshold
        return result, score
