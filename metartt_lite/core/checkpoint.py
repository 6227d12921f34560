"""Checkpoints: a format version, the model config they need, tensors and provenance, loaded with
``torch.load(weights_only=True)`` so a file never runs code; every mismatch gets an error naming it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .utils import MetaRTTError, atomic_torch_save

FORMAT_VERSION = 1
NOT_ARCHITECTURE = {"dropout"}  # model-config fields a checkpoint may differ in
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
# the shipped checkpoints (README "Shipped checkpoints")
PRETRAINED = WEIGHTS_DIR / "pretrain.pt"          # rtmdnet* presets: shared conv + fc4–fc5
META_CHECKPOINT = WEIGHTS_DIR / "meta.pt"         # metartt: θ0, A_init, A_on
PRUNE_CHECKPOINT = WEIGHTS_DIR / "prune.pt"       # metartt-prune: ψ (on meta.pt)
PRUNE_STATIC_CHECKPOINT = WEIGHTS_DIR / "prune_static.pt"    # metartt-prune-static: one mask for all videos
PRUNE_NOMETA_CHECKPOINT = WEIGHTS_DIR / "prune_nometa.pt"    # metartt-prune-nometa: ψ on pretrain.pt
NANO_META_CHECKPOINT = WEIGHTS_DIR / "nano_meta.pt"          # metartt-nano: θ0, A_init, A_on of the online head


def save_checkpoint(path: str | os.PathLike, kind: str, model_cfg: ModelConfig, tensors: dict[str, torch.Tensor],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write atomically (temp file + rename). ``kind``: 'pretrain', 'meta' or 'prune'."""
    obj = {"format_version": FORMAT_VERSION, "kind": kind, "model_config": model_cfg.to_dict(),
           "tensors": {k: v.detach().cpu() for k, v in tensors.items()}, "extra": extra or {}}
    return atomic_torch_save(path, obj)


def load_checkpoint(path: str | os.PathLike, kind: str | None = None,
                    model_cfg: ModelConfig | None = None) -> dict[str, Any]:
    """Load and check a checkpoint; raise MetaRTTError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise MetaRTTError(f"checkpoint {path} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt, or not a torch file, or would need code execution
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MetaRTTError(f"checkpoint {path} is corrupt or not a metartt_lite checkpoint ({first[:160]})") from None
    if not isinstance(obj, dict) or "format_version" not in obj or "tensors" not in obj:
        raise MetaRTTError(f"checkpoint {path} is not a metartt_lite checkpoint (no format_version/tensors)")
    if obj["format_version"] != FORMAT_VERSION:
        raise MetaRTTError(f"checkpoint {path} has format version {obj['format_version']}, expected {FORMAT_VERSION}")
    if kind is not None and obj.get("kind") != kind:
        raise MetaRTTError(f"checkpoint {path} is a {obj.get('kind')!r} checkpoint, expected {kind!r}")
    if model_cfg is not None:
        want = model_cfg.to_dict()
        got = obj.get("model_config", {})
        diff = [f"{k}={got.get(k)!r} (expected {v!r})" for k, v in want.items()
                if k not in NOT_ARCHITECTURE and got.get(k) != v]
        if diff:
            raise MetaRTTError(f"checkpoint {path} was made for another architecture: {', '.join(diff)}")
    return obj


def checkpoint_model_config(path: str | os.PathLike) -> ModelConfig:
    """The :class:`ModelConfig` a checkpoint was made for (its trunk cut, widths, crop): trackers and
    meta-training build their network from it, so a checkpoint of another architecture loads as itself."""
    obj = load_checkpoint(path)
    try:
        return ModelConfig(**obj["model_config"])
    except (KeyError, TypeError) as e:
        raise MetaRTTError(f"checkpoint {path} has no usable model_config ({e})") from None


def check_tensors(obj: dict[str, Any], expected: dict[str, torch.Size], path: str | os.PathLike = "checkpoint") -> None:
    """Every expected tensor is present with the expected shape."""
    t = obj["tensors"]
    missing = [k for k in expected if k not in t]
    if missing:
        raise MetaRTTError(f"{path} is missing tensors: {', '.join(missing[:6])}{' …' if len(missing) > 6 else ''}")
    bad = [f"{k} {tuple(t[k].shape)} vs {tuple(s)}" for k, s in expected.items() if t[k].shape != s]
    if bad:
        raise MetaRTTError(f"{path} has tensors of the wrong shape (another width?): {'; '.join(bad[:4])}")


def load_optimizer_state(opt: torch.optim.Optimizer, extra: dict[str, Any], path: str | os.PathLike) -> None:
    """Restore the optimiser state saved in a ``*_last.pt``'s ``extra``; a file without one, or from
    another variant of the run (other parameter groups), is a user error, not a crash."""
    if "optimizer" not in extra:
        raise MetaRTTError(f"{path} has no optimiser state (a final checkpoint?); cannot resume from it")
    try:
        opt.load_state_dict(extra["optimizer"])
    except (ValueError, KeyError, TypeError) as e:
        raise MetaRTTError(f"{path} was written by a run with other settings ({' '.join(str(e).split())}); "
                           f"use a new --out") from None
