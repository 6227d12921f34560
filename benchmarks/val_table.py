"""One evaluation run for the closing notes: every tracker preset and pruning variant side by side on
the same frames with the same timer (``evaluation.evaluate``), plus the pruning rates per layer.

    python benchmarks/val_table.py --split val --out docs/results/val
    python benchmarks/val_table.py --trackers metartt,metartt-prune,metartt-prune-nometa,metartt-prune-static

Pruning variants: ``metartt-prune-nometa`` / ``metartt-prune-static`` use
``weights/prune_nometa.pt`` / ``weights/prune_static.pt`` (trained with ``prune-train --no-meta`` /
``--static-mask``).
"""
from __future__ import annotations

import argparse
from pathlib import Path


from metartt_lite.data.sequences import data_root, load_split
from metartt_lite.evaluation.ope import evaluate, format_table
from metartt_lite.track.pruned import prune_rate_summary, record_prune_rates
from metartt_lite.track.registry import make_tracker
from metartt_lite.core.utils import atomic_write_json

DEFAULT = "rtmdnet,rtmdnet-k5,rtmdnet-k5-tuned,metartt,metartt-prune,metartt-prune-nometa,metartt-prune-static,csrt,kcf,mil"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--sequences", default=None)
    ap.add_argument("--trackers", default=DEFAULT)
    ap.add_argument("--out", default="docs/results/val")
    args = ap.parse_args()
    seqs = load_split(data_root(args.data), split=args.split, names=args.sequences)
    rates: dict[str, list] = {}

    def factory(name: str):
        t = make_tracker(name)
        record_prune_rates(t, name, rates)
        return t

    res = evaluate(args.trackers.split(","), seqs, factory, out_dir=Path(args.out),
                   config={"split": args.split, "sequences": [s.name for s in seqs]})
    summary = {name: prune_rate_summary(per_video)["layers"] for name, per_video in rates.items()}
    res["prune_rates"] = summary
    atomic_write_json(Path(args.out) / "results.json", res)
    print(format_table(res))
    if summary:
        print("pruning rate per layer (mean ± std over videos):")
        for name, layers in summary.items():
            print(f"  {name}: " + ", ".join(f"{l} {v['mean']:.2f}±{v['std']:.2f}" for l, v in layers.items()))


if __name__ == "__main__":
    main()
