"""Is an int8 (post-training, FX graph mode, x86 backend) frozen trunk worth it on this CPU? (issue #15)

Calibrates ``torch.ao.quantization`` on search crops of ``train`` frames, then prints, side by side in one
run on held-out ``val`` crops: the int8 trunk's error against the float trunk (relative L2, cosine) and the
median CPU time per 256 px crop of the float trunk (TorchScript-frozen, as the tracker runs it), the int8
trunk, and the int8 trunk traced + frozen.

    python benchmarks/trunk_int8.py --data ../shared/data --threads 1
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from metartt_lite.data.sequences import data_root, load_split
from metartt_lite.model.net import Trunk, _TrunkCore, crop_image, make_crop, to_tensor
from metartt_lite.core.config import ModelConfig


def crops(seqs, per_seq: int, cfg: ModelConfig) -> torch.Tensor:
    out = []
    for s in seqs:
        for i in np.linspace(0, len(s) - 1, per_seq).astype(int):
            out.append(to_tensor(crop_image(s.frame(int(i)), make_crop(s.groundtruth[int(i)], cfg)), torch.device("cpu")))
    return torch.cat(out)  # to_tensor gives float already


def cpu_ms(fn, x: torch.Tensor, reps: int) -> float:
    for _ in range(3):
        fn(x)
    ts = []
    for _ in range(reps):
        t0 = time.process_time()
        fn(x)
        ts.append(time.process_time() - t0)
    return float(np.median(ts)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    cfg = ModelConfig()
    trunk = Trunk(cfg.trunk_blocks)
    root = data_root(args.data)
    calib = crops(load_split(root, "train")[:8], 6, cfg)
    test = crops(load_split(root, "val")[:6], 4, cfg)
    core = _TrunkCore(trunk).eval()
    prepared = prepare_fx(core, get_default_qconfig_mapping("x86"), example_inputs=(calib[:1],))
    with torch.no_grad():
        for i in range(0, len(calib), 8):
            prepared(calib[i:i + 8])
    q = convert_fx(prepared)
    with torch.inference_mode():
        ref = torch.cat([trunk.frozen_forward(x[None]) for x in test])
        qo = torch.cat([q(x[None]) for x in test])
        rel = (ref - qo).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)
        cos = torch.nn.functional.cosine_similarity(ref.flatten(1), qo.flatten(1))
        qj = torch.jit.freeze(torch.jit.trace(q, test[:1]))
        x = test[:1]
        f32, i8, i8j = (cpu_ms(trunk.frozen_forward, x, args.reps), cpu_ms(q, x, args.reps), cpu_ms(qj, x, args.reps))
    print(f"calibration crops {len(calib)}, test crops {len(test)}, torch threads {args.threads}")
    print(f"int8 vs float trunk output: relative L2 error median {rel.median():.3f} (max {rel.max():.3f}), "
          f"cosine min {cos.min():.3f}")
    print(f"CPU ms per crop (median of {args.reps}): float frozen {f32:.1f}, int8 {i8:.1f} ({i8 / f32:.2f}x), "
          f"int8 frozen {i8j:.1f} ({i8j / f32:.2f}x)")


if __name__ == "__main__":
    main()
