"""Which meta-learning variant generalizes? Evaluate meta checkpoints beside the baselines in ONE
``evaluation.evaluate`` run (same frames, seeds, timer), then compare each against the baselines with the
paired bootstrap over sequences (``compare.py``).

    python benchmarks/generalization.py --split val --seeds 0,1,2 --workers 2 --out outputs/gen \
        --variant full=runs/full/meta.pt --variant rates=runs/rates/meta.pt \
        --baselines rtmdnet,rtmdnet-k5-tuned,csrt

Writes OUT/results.json, plots, OUT/compare.json/.md (every variant against every baseline) and prints both
tables. Baselines use the shipped ``pretrain.pt`` (``--pretrained`` to use another).

``--reuse OLD/results.json --reuse-trackers rtmdnet-k5-tuned,csrt,full_syn`` takes those trackers' per-sequence,
per-seed results from an earlier run instead of running them again (our trackers are deterministic given the
seed, so a rerun of unchanged code gives the same boxes). The earlier run must have the same sequences and seeds,
else this stops; its FPS figures come from its own run (the table says so in ``config.reused``).
"""
from __future__ import annotations

import argparse
import functools
from pathlib import Path

from metartt_lite.evaluation.compare import compare, compare_markdown, write_comparison
from metartt_lite.data.sequences import data_root, load_split
from metartt_lite.evaluation.ope import evaluate, format_table, load_results, plot_results
from metartt_lite.core.utils import atomic_write_json
from metartt_lite.track.registry import make_metartt, make_tracker, split_spec
from metartt_lite.core.utils import MetaRTTError, parse_seeds


def build(name: str, seed: int, variants: dict[str, str], pretrained: str | None) -> object:
    """A variant from its meta checkpoint (or ``TRACKER@CHECKPOINT``: a registered tracker on other weights,
    e.g. ``metartt-prune@runs/p/prune.pt``), else a registered tracker (module level: picklable for workers)."""
    if name in variants:
        tracker, ckpt = split_spec(variants[name])
        if ckpt is None:
            return make_metartt(checkpoint=variants[name], seed=seed, name=name)
        t = make_tracker(tracker, checkpoint=ckpt, seed=seed)
        t.name = name
        return t
    if pretrained and not name.startswith(("csrt", "kcf", "mil", "metartt")):
        return make_tracker(name, checkpoint=pretrained, seed=seed)
    return make_tracker(name, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--sequences", default=None)
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=PATH of a meta checkpoint, or NAME=TRACKER@PATH (repeatable)")
    ap.add_argument("--baselines", default="rtmdnet-k5-tuned,csrt")
    ap.add_argument("--pretrained", default=None, help="pretrain checkpoint for the rtmdnet baselines")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--reuse", default=None, help="results.json of an earlier run to take --reuse-trackers from")
    ap.add_argument("--reuse-trackers", default="", help="comma-separated trackers taken from --reuse")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    variants = {}
    for v in args.variant:
        name, sep, path = v.partition("=")
        if not sep or not Path(split_spec(path)[1] or path).is_file():
            raise MetaRTTError(f"--variant {v!r}: expected NAME=PATH of an existing meta checkpoint "
                               f"(or NAME=TRACKER@PATH)")
        variants[name] = path
    baselines = [b for b in args.baselines.split(",") if b]
    reused = [t for t in args.reuse_trackers.split(",") if t]
    old = None
    if reused:
        if not args.reuse:
            raise MetaRTTError("--reuse-trackers needs --reuse OLD/results.json")
        old = load_results(args.reuse)
        missing = [t for t in reused if t not in old["trackers"]]
        if missing:
            raise MetaRTTError(f"{args.reuse} has no results for {', '.join(missing)}")
    names = [n for n in list(variants) + baselines if n not in reused]
    seqs = load_split(data_root(args.data), split=args.split, names=args.sequences)
    factory = functools.partial(build, variants=variants, pretrained=args.pretrained)
    res = evaluate(names, seqs, factory, out_dir=Path(args.out), seeds=parse_seeds(args.seeds), workers=args.workers,
                   config={"split": args.split, "variants": variants, "baselines": baselines,
                           "pretrained": args.pretrained, "command": "benchmarks/generalization.py"})
    if old is not None:
        for key in ("sequences", "seeds"):
            if list(old["config"].get(key, [])) != list(res["config"].get(key, [])):
                raise MetaRTTError(f"--reuse {args.reuse}: its {key} differ from this run's; run those trackers again")
        for t in reused:
            res["trackers"][t] = old["trackers"][t]
        res["config"]["reused"] = {"from": str(args.reuse), "created": old.get("created"), "trackers": reused}
        atomic_write_json(Path(args.out) / "results.json", res)
        plot_results(res, Path(args.out))
    variants = {**{t: (old["config"].get("variants") or {}).get(t, "reused") for t in reused
                   if t not in baselines}, **variants}
    print(format_table(res))
    comps = [compare(res, a, b, n_resamples=args.resamples) for a in variants for b in baselines]
    comps += [compare(res, a, b, n_resamples=args.resamples) for i, a in enumerate(variants)
              for b in list(variants)[i + 1:]]
    if comps:
        write_comparison(comps, Path(args.out) / "compare", source=str(Path(args.out) / "results.json"))
        print(compare_markdown(comps))
    print(f"{len(seqs)} sequences, wall time {res['wall_time']:.0f} s; {res['device']}")


if __name__ == "__main__":
    main()
