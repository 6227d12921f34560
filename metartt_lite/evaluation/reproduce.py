"""``python -m metartt_lite reproduce``: the paper's Tables 1–3 (MetaRTT, AAAI 2020) in one command.

    python -m metartt_lite reproduce --data ../shared/data --out outputs/reproduce            # full
    python -m metartt_lite reproduce --data ../shared/data --out outputs/reproduce-q --quick  # < 15 min

1. **Training** (from the ``train`` split only, never ``val``; fixed seeds) of whatever is missing in
   ``OUT/checkpoints/<variant>/``:

   * meta variants, all initialised from the shipped ``weights/pretrain.pt`` (Adam 1e-4 on θ0, 1e-2 on
     the log-rates, as the shipped ``meta.pt``): ``full``, ``no-estimated-target`` (D_on around the
     ground truth), ``no-hard-examples`` (γ = 0, no D_test^hard), ``scalar-lr`` (one α per tensor and
     step), ``meta-tracker`` (one meta-learned initial step and no online step in training, no hard
     examples: the Meta-Tracker baseline; when tracking, online updates reuse that step's rates) and ``meta-tracker-hard`` (the same with hard examples);
   * pruning variants: ``prune`` (ψ on the ``full`` meta checkpoint, Adam 1e-3), ``prune-nometa``
     (``--no-meta`` on ``pretrain.pt``, 1e-3) and ``prune-static`` (one static mask per layer on the
     ``full`` checkpoint, 1e-2).

   Training is cached: a variant whose final checkpoint (``meta.pt`` / ``prune.pt``) exists is reused
   (the log says so); a half-finished one (``*_last.pt`` only) resumes where it stopped.
2. **Evaluation** of every row on the ``val`` split in ONE :func:`evaluation.evaluate` call (same
   frames, same timer): ``rtmdnet``, ``rtmdnet-k5``, ``rtmdnet-k5-tuned``, the six meta variants, the
   three pruning variants, ``csrt``, ``kcf``, ``mil``, ``nanotrack``.
3. **Output**: ``OUT/results.json`` (evaluate's results plus every table number, training wall times,
   seeds, device, git commit, quick flag), ``OUT/README.md`` (Tables 1–3 beside the paper's numbers,
   FPS ratios vs ``rtmdnet`` measured in this run), ``OUT/success.png``, ``OUT/precision.png`` and the
   interactive ``OUT/success.html``.

Durations on this project's 2-core CPU machine (AMD EPYC): on the 24/11 split, **full mode** trains
each meta variant in 17–20 min (the two Meta-Tracker ones 6.5–7.5 min) and each pruning variant in
4.4–5 min; the evaluation of all 15 trackers with ``--seeds 0,1,2 --workers 2`` took 54 min
(docs/results/full). On the earlier 5-sequence ``val`` split with one seed the whole run took 54 min.
``--quick`` (40 meta and 40 prune episodes, the two shortest ``val`` sequences) takes **under 15 min**
(most of it the first feature cache). Quick numbers show the pipeline works; they are not the paper's
comparison (a few dozen episodes do not meta-learn much).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Callable


from ..core.checkpoint import PRETRAINED, load_checkpoint
from ..data.sequences import data_root, load_split
from .ope import evaluate, format_table, plot_results
from ..train.features import CacheConfig
from ..train.meta import meta_config, meta_train
from ..train.prune import prune_config, prune_train
from ..track.pruned import prune_rate_summary, record_prune_rates
from ..track.registry import make_metartt, make_tracker
from .compare import compare, compare_markdown
from ..core.utils import (MetaRTTError, atomic_write, atomic_write_json, check_output_dir, device, git_commit,
                    parse_seeds, seed_everything)

QUICK_META_EPISODES = 40
QUICK_PRUNE_EPISODES = 40
FULL_META_EPISODES = 1000
FULL_PRUNE_EPISODES = 500
QUICK_VAL_SEQUENCES = 2
META_LR_RATES = 1e-2  # as the shipped meta.pt (README "Shipped checkpoints")

# variant -> (tracker name in the evaluation, meta-train flags)
META_VARIANTS: dict[str, tuple[str, dict[str, bool]]] = {
    "full": ("metartt", {}),
    "no-estimated-target": ("metartt-no-estimated-target", {"no_estimated_target": True}),
    "no-hard-examples": ("metartt-no-hard-examples", {"no_hard_examples": True}),
    "scalar-lr": ("metartt-scalar-lr", {"scalar_lr": True}),
    "meta-tracker": ("metartt-meta-tracker", {"meta_tracker": True, "no_hard_examples": True}),
    "meta-tracker-hard": ("metartt-meta-tracker-hard", {"meta_tracker": True}),
}
# variant -> (tracker name, lr, prune-train flags)
PRUNE_VARIANTS: dict[str, tuple[str, float, dict[str, bool]]] = {
    "prune": ("metartt-prune", 1e-3, {}),
    "prune-nometa": ("metartt-prune-nometa", 1e-3, {"no_meta": True}),
    "prune-static": ("metartt-prune-static", 1e-2, {"static_mask": True}),
}
PEER_TRACKERS = ("csrt", "kcf", "mil", "nanotrack")
ABLATION_TABLES = ("table2", "table3")  # rows after the first are ablations of the first (the full model)

# The paper's OTB2015 numbers (Succ %, Prec %, FPS on a Titan Xp; notes section 7). None: not reported.
PAPER: dict[str, tuple[float, float, float] | None] = {
    "rtmdnet": (65.0, 88.5, 42), "rtmdnet-k5": (57.8, 77.5, 55), "rtmdnet-k5-tuned": None,
    "metartt": (65.5, 89.0, 58), "metartt-prune": (65.1, 87.4, 65),
    "csrt": None, "kcf": None, "mil": None, "nanotrack": None,
    "metartt-no-estimated-target": (58.6, 81.2, 54), "metartt-no-hard-examples": (60.7, 81.9, 57),
    "metartt-scalar-lr": (60.9, 82.8, 57), "metartt-meta-tracker": (56.8, 81.2, 40),
    "metartt-meta-tracker-hard": (62.7, 86.2, 41),
    "metartt-prune-nometa": (61.7, 83.1, 64), "metartt-prune-static": (60.9, 81.2, 59),
}
PAPER_PRUNE_RATE = {"metartt-prune": "50 ± 5", "metartt-prune-nometa": "49 ± 6", "metartt-prune-static": "53"}

TABLES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "table1": ("Table 1: RT-MDNet vs MetaRTT (K_init/K_on) and peers", [
        ("rtmdnet", "RT-MDNet (K 50/15)"), ("rtmdnet-k5", "RT-MDNet (K 5/5)"),
        ("rtmdnet-k5-tuned", "RT-MDNet (K 5/5, Adam 1e-3; ours only)"), ("metartt", "**MetaRTT** (5/5)"),
        ("metartt-prune", "**MetaRTT+Prune**"), ("csrt", "CSRT (OpenCV)"), ("kcf", "KCF (OpenCV)"),
        ("mil", "MIL (OpenCV)"), ("nanotrack", "NanoTrack v2 (OpenCV TrackerNano)")]),
    "table2": ("Table 2: meta-learning ablations", [
        ("metartt", "**MetaRTT** (full)"), ("metartt-no-estimated-target", "− no estimated target (D_on from GT)"),
        ("metartt-no-hard-examples", "− no hard instances (γ = 0)"), ("metartt-scalar-lr", "− scalar lr"),
        ("metartt-meta-tracker", "Meta-Tracker baseline (1 meta-learned init step)"),
        ("metartt-meta-tracker-hard", "Meta-Tracker + hard instances")]),
    "table3": ("Table 3: pruning variants", [
        ("metartt-prune", "**MetaRTT+Prune**"), ("metartt-prune-nometa", "− no meta-learning"),
        ("metartt-prune-static", "− static mask")]),
}


def _log(msg: str) -> None:
    print(f"[reproduce] {msg}", flush=True)


def _shortest(seqs: list, n: int) -> list:
    """The ``n`` shortest sequences (ties by name), in their split order."""
    keep = {s.name for s in sorted(seqs, key=lambda s: (len(s), s.name))[:n]}
    return [s for s in seqs if s.name in keep]


# ------------------------------------------------------------------------------------------ training

def _meta_cfg(flags: dict[str, bool], episodes: int, seed: int, meta_batch: int):
    return meta_config(episodes=episodes, meta_batch=meta_batch, lr_rates=META_LR_RATES, seed=seed,
                       frame_step=CacheConfig.frame_step, **flags)


def _prune_cfg(flags: dict[str, bool], lr: float, episodes: int, seed: int, meta_ckpt: Path | None):
    return prune_config(checkpoint=str(meta_ckpt) if meta_ckpt else None, episodes=episodes, lr=lr, seed=seed, **flags)


def _check_reused(path: Path, episodes: int, seed: int, variant: str) -> dict:
    """The provenance of a final checkpoint that is about to be reused; it must match this run's settings."""
    extra = load_checkpoint(path)["extra"]
    got_ep = extra.get("episodes", extra.get("config", {}).get("episodes"))
    got_seed = extra.get("config", {}).get("seed")
    if got_ep != episodes or got_seed != seed:
        raise MetaRTTError(f"{path} ({variant}) was trained with {got_ep} episodes, seed {got_seed}; this run asks "
                           f"for {episodes} episodes, seed {seed}: use another --out or delete {path.parent}")
    return extra


def _train_or_reuse(final: Path, last: Path, episodes: int, seed: int, variant: str, what: str,
                    train: Callable[[bool], None]) -> tuple[dict, bool]:
    """Reuse ``final`` if it exists (its settings must match), else train (resuming from ``last`` if a
    half-finished run left one); return the checkpoint's provenance and whether it was reused."""
    if final.exists():
        extra = _check_reused(final, episodes, seed, variant)
        _log(f"{variant}: reusing {final} (trained earlier, {extra.get('wall_time_s', 0):.0f} s)")
        return extra, True
    resume = last.exists()
    _log(f"{variant}: {'resuming' if resume else 'training'} {what} -> {final}")
    train(resume)
    return _check_reused(final, episodes, seed, variant), False


def _train_all(train_seqs: list, ckpt_dir: Path, meta_episodes: int, prune_episodes: int, seed: int,
               meta_batch: int, progress: bool, pretrained: Path | None) -> dict[str, dict]:
    info: dict[str, dict] = {}
    for variant, (tname, flags) in META_VARIANTS.items():
        out = ckpt_dir / variant
        final = out / "meta.pt"
        t0 = time.time()

        def train(resume: bool) -> None:  # called at once, inside this iteration
            meta_train(train_seqs, out, _meta_cfg(flags, meta_episodes, seed, meta_batch), init_from=pretrained,
                       resume=resume, progress=progress, command=f"reproduce: meta variant {variant}")
        extra, reused = _train_or_reuse(final, out / "meta_last.pt", meta_episodes, seed, variant,
                                        f"meta-train ({meta_episodes} episodes)", train)
        info[variant] = {"kind": "meta", "tracker": tname, "checkpoint": str(final), "reused": reused,
                         "episodes": meta_episodes, "flags": flags, "seed": seed,
                         "wall_time_s_this_run": time.time() - t0,
                         "training_wall_time_s": extra.get("wall_time_s"), "cache_time_s": extra.get("cache_time_s")}
    full_meta = ckpt_dir / "full" / "meta.pt"
    for variant, (tname, lr, flags) in PRUNE_VARIANTS.items():
        out = ckpt_dir / variant
        final = out / "prune.pt"
        src = pretrained if flags.get("no_meta") else full_meta
        t0 = time.time()

        def train(resume: bool) -> None:  # called at once, inside this iteration
            cfg = _prune_cfg(flags, lr, prune_episodes, seed, None if flags.get("no_meta") else full_meta)
            prune_train(train_seqs, out, src, cfg, resume=resume, progress=progress,
                        command=f"reproduce: prune variant {variant}")
        extra, reused = _train_or_reuse(final, out / "prune_last.pt", prune_episodes, seed, variant,
                                        f"prune-train ({prune_episodes} episodes, lr {lr:g})", train)
        info[variant] = {"kind": "prune", "tracker": tname, "checkpoint": str(final), "reused": reused,
                         "episodes": prune_episodes, "lr": lr, "flags": flags, "seed": seed,
                         "source_checkpoint": str(src) if src else None,
                         "wall_time_s_this_run": time.time() - t0,
                         "training_wall_time_s": extra.get("wall_time_s"), "cache_time_s": extra.get("cache_time_s"),
                         "train_mean_prune_rate": extra.get("mean_prune_rate")}
    return info


# ---------------------------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class _Factory:
    """(tracker name, seed) -> tracker from the registry: ours and the peers with the shipped weights, the
    variants with this run's checkpoints (OUT/checkpoints). A module-level class, so that it pickles into
    ``evaluate``'s worker processes."""
    training: dict
    pretrained: Path | None

    def __call__(self, name: str, seed: int):
        by_name = {v["tracker"]: v for v in self.training.values()}
        if name in by_name:
            v = by_name[name]
            if v["kind"] == "meta":
                t = make_metartt(checkpoint=v["checkpoint"], seed=seed, name=name)
            else:
                meta_ckpt = self.pretrained if v["flags"].get("no_meta") else self.training["full"]["checkpoint"]
                t = make_tracker(name, checkpoint=meta_ckpt, prune_checkpoint=v["checkpoint"], seed=seed)
        else:
            t = make_tracker(name, seed=seed)
        t.name = name
        return t


def _first_frame_prune_rates(names: list[str], seqs: list, factory: _Factory, seeds: list[int]) -> dict[str, list]:
    """Per-layer pruning rate of every pruned tracker on every (seed, video), from its first-frame pruning
    (the same ``init`` the evaluation runs; measured here, in this process, so it also works with workers)."""
    rates: dict[str, list] = {}
    for name in names:
        for seed in seeds:
            for seq in seqs:
                t = factory(name, seed)
                record_prune_rates(t, name, rates)
                t.init(seq.frame(0), seq.init_box)
    return rates


def _rows(res: dict, prune_rates: dict) -> dict[str, list[dict]]:
    trackers = res["trackers"]
    base = trackers["rtmdnet"]["fps"]
    paper_base = PAPER["rtmdnet"][2]
    tables = {}
    for key, (_title, rows) in TABLES.items():
        out = []
        for name, label in rows:
            r = trackers[name]
            paper = PAPER.get(name)
            row = {"tracker": name, "label": label, "auc": r["auc"], "precision": r["precision"], "fps": r["fps"],
                   "fps_with_init": r["fps_with_init"], "init_time": r["init_time"],
                   "fps_ratio_vs_rtmdnet": (r["fps"] / base) if (r["fps"] and base) else None,
                   "paper": None if paper is None else {"succ": paper[0], "prec": paper[1], "fps": paper[2],
                                                        "fps_ratio_vs_rtmdnet": paper[2] / paper_base}}
            if key == "table3":
                row["prune_rate"] = prune_rates.get(name)
                row["paper_prune_rate"] = PAPER_PRUNE_RATE.get(name)
            row["sequence_auc"] = {s: v["auc"] for s, v in r.get("sequences", {}).items()}
            if key in ABLATION_TABLES and out:  # an ablation row against the table's full model (its first row)
                ref = out[0]
                common = [s for s in row["sequence_auc"] if s in ref["sequence_auc"]]
                row["vs_full"] = {"tracker": ref["tracker"], "delta_auc": r["auc"] - ref["auc"],
                                  "full_ahead_on": sum(ref["sequence_auc"][s] > row["sequence_auc"][s] for s in common),
                                  "n_sequences": len(common)}
            out.append(row)
        tables[key] = out
    return tables


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def _num(v: float | None, spec: str = ".1f") -> str:
    return "—" if v is None else format(v, spec)


def _eval_seeds(rp: dict) -> list[int]:
    """The evaluation's tracker seeds (results written before seeds existed record one int)."""
    t = rp.get("seeds", {}).get("trackers", rp.get("seed", 0))
    return list(t) if isinstance(t, list) else [t]


def _workers_note(report: dict) -> str:
    w = report.get("config", {}).get("workers", 1)
    return f"; {w} worker processes, FPS comparable within this run only" if w > 1 else ""


def _markdown(report: dict) -> str:
    rp = report["reproduce"]
    tables = report["tables"]
    mode = (f" (quick mode: {rp['meta_episodes']} meta / {rp['prune_episodes']} prune episodes, "
            f"sequences {', '.join(rp['val_sequences'])})" if rp["quick"] else "")
    L = [f"# MetaRTT reproduction{' — quick mode' if rp['quick'] else ''}", "",
         f"Written by `{rp['command']}` on {report['created']} (commit `{rp['git_commit']}`).", "",
         f"* Device: {report['device']} (torch device `{rp['torch_device']}`).",
         f"* Training: `train` split ({len(rp['train_sequences'])} sequences: {', '.join(rp['train_sequences'])}), "
         f"seed {rp['seed']}, {rp['meta_episodes']} meta episodes per meta variant, {rp['prune_episodes']} "
         f"episodes per pruning variant; all meta variants start from the shipped `pretrain.pt`.",
         f"* Evaluation: `val` split, {len(rp['val_sequences'])} sequences ({', '.join(rp['val_sequences'])}; "
         f"{rp['val_frames']} frames), every tracker in one `evaluation.evaluate` call (same frames, same "
         f"timer{_workers_note(report)}), tracker seeds {', '.join(map(str, _eval_seeds(rp)))} (OpenCV's trackers are deterministic and "
         f"run once), {report['wall_time']:.0f} s.",
         f"* Wall time of this run: {rp['total_wall_time_s']:.0f} s (training {rp['training_wall_time_s']:.0f} s, "
         f"evaluation {rp['evaluation_wall_time_s']:.0f} s).",
         "",
         "Ours: AUC of the success plot (×100) and precision at 20 px (×100) on our `val` split, FPS on this "
         "machine (tracking only; first-frame init excluded) and its ratio to `rtmdnet` measured in the same "
         "run. Paper: OTB2015 success / precision / FPS on a Titan Xp. The datasets, hardware and training "
         "budgets differ (the paper: 40k episodes on ImageNet-VID), so compare ratios and orderings, not "
         "absolute values.",
         ""]
    if rp["quick"]:
        L += ["**Quick mode**: a few dozen episodes show that the pipeline runs end to end; they are not enough "
              "to meta-learn, so the rows are not a reproduction of the paper's claims.", ""]
    for key, (title, _rows) in TABLES.items():
        L += [f"## {title}{mode}", ""]
        head = "| tracker | AUC | Prec | FPS | FPS / rtmdnet | paper Succ | paper Prec | paper FPS | paper FPS / RT-MDNet |"
        sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        if key == "table3":
            head += " prune rate % (mean ± std over videos) | paper PR % |"
            sep += "---:|---:|"
        L += [head, sep]
        for r in tables[key]:
            p = r["paper"] or {}
            cells = [f"{r['label']} (`{r['tracker']}`)", _pct(r["auc"]), _pct(r["precision"]), _num(r["fps"]),
                     _num(r["fps_ratio_vs_rtmdnet"], ".2f"), _num(p.get("succ")), _num(p.get("prec")),
                     _num(p.get("fps"), ".0f"), _num(p.get("fps_ratio_vs_rtmdnet"), ".2f")]
            if key == "table3":
                pr = r.get("prune_rate")
                cells += ["—" if not pr else f"{100 * pr['mean']:.0f} ± {100 * pr['std']:.0f}",
                          r.get("paper_prune_rate") or "—"]
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
    L += _per_sequence_markdown(tables, rp["val_sequences"])
    L += _paired_markdown(report)
    L += ["## Training", "", "| variant | tracker | episodes | checkpoint | reused | training wall time (s) |",
          "|---|---|---:|---|---|---:|"]
    for variant, v in rp["training"].items():
        L.append(f"| {variant} | `{v['tracker']}` | {v['episodes']} | `{Path(v['checkpoint']).relative_to(rp['out'])}` "
                 f"| {'yes' if v['reused'] else 'no'} | {_num(v['training_wall_time_s'], '.0f')} |")
    L += ["", "## Plots", "",
          "* [success.png](success.png) — success plots (AUC in the legend)",
          "* [precision.png](precision.png) — precision plots",
          "* [success.html](success.html) — both, interactive (plotly, works offline)",
          "* [results.json](results.json) — every number above, per-sequence results, settings", "",
          f"This run took {_num((rp.get('total_wall_time_s') or 0) / 60, '.0f')} min (training "
          f"{_num((rp.get('training_wall_time_s') or 0) / 60, '.0f')} min, evaluation "
          f"{_num((rp.get('evaluation_wall_time_s') or 0) / 60, '.1f')} min) on {rp.get('torch_device', '?')}. "
          "On this project's 2-core CPU machine full mode takes about an hour and `--quick` under 15 min "
          "(module docstring of `metartt_lite/evaluation/reproduce.py`). A rerun with the same `--out` "
          "reuses the trained checkpoints and only re-evaluates; `--render-only` rewrites this file and the "
          "plots from `results.json` without training or evaluating.", ""]
    if rp.get("rendered_by"):
        L += [f"This file was re-rendered from `results.json` by `{rp['rendered_by']['command']}` at commit "
              f"`{rp['rendered_by']['git_commit']}` (numbers unchanged; layout of that commit).", ""]
    return "\n".join(L)


PAIRS = [("metartt", b) for b in ("rtmdnet", "rtmdnet-k5", "rtmdnet-k5-tuned", "csrt", "nanotrack")] + \
    [("metartt-prune", b) for b in ("rtmdnet", "csrt")] + \
    [(t, ref) for key, ref in (("table2", "metartt"), ("table3", "metartt-prune")) for t, _l in TABLES[key][1][1:]]


def _paired_markdown(report: dict) -> list[str]:
    """Paired comparisons (compare.py): each row against its reference, AUC difference averaged over seeds
    within each sequence, 95% bootstrap CI over sequences."""
    trackers = report["trackers"]
    comps = [compare(report, a, b) for a, b in PAIRS if a in trackers and b in trackers]
    if not comps:
        return []
    return ["## Paired comparisons: which gaps are resolved?", "",
            "Each row A against B on the same `val` sequences. Where the CI contains 0 the run does not order "
            "the two trackers, whatever the means say.", "", compare_markdown(comps), ""]


def _per_sequence_markdown(tables: dict, seqs: list[str]) -> list[str]:
    """Per-sequence AUCs of the ablation tables, with how many sequences the full model wins: a mean gap
    that rests on one sequence is not an ordering."""
    L = ["## Per sequence: do the gaps hold across videos?", "",
         "AUC ×100 per `val` sequence; Δ = row − full model (the table's first row); *full ahead* = on how "
         "many sequences the full model's AUC is higher. With 5 sequences, a mean gap under ~1 AUC point, or "
         "one carried by a single sequence, is noise rather than an ordering.", ""]
    for key in ABLATION_TABLES:
        title = TABLES[key][0].split(":")[0]
        L += [f"**{title}**", "", "| tracker | " + " | ".join(seqs) + " | mean | Δ | full ahead |",
              "|---|" + "---:|" * (len(seqs) + 3)]
        for r in tables[key]:
            v = r.get("vs_full")
            cells = [f"`{r['tracker']}`"] + [_pct(r.get("sequence_auc", {}).get(s)) for s in seqs] + [_pct(r["auc"])]
            cells += (["—", "—"] if v is None else
                      [f"{100 * v['delta_auc']:+.1f}", f"{v['full_ahead_on']}/{v['n_sequences']}"])
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
    return L


def render(out: str | Path, command: str = "") -> dict:
    """Rewrite ``OUT/README.md`` (and the derived ``tables`` of ``OUT/results.json``) from the results of an
    earlier run, without training or evaluating: every measured number is kept as it was."""
    out = Path(out)
    path = out / "results.json"
    if not path.is_file():
        raise MetaRTTError(f"{path} not found: --render-only needs the output folder of an earlier reproduce run")
    try:
        res = json.loads(path.read_text())
        res["tables"] = _rows(res, res.get("prune_rates", {}))
        res["reproduce"]["rendered_by"] = {"command": command or "reproduce --render-only",
                                           "git_commit": git_commit()}
        text = _markdown(res)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise MetaRTTError(f"{path} is not a reproduce results file ({type(e).__name__}: {e})") from e
    atomic_write_json(path, res)
    plot_results(res, out)
    atomic_write(out / "README.md", lambda tmp: Path(tmp).write_text(text))
    _log(f"re-rendered {out / 'README.md'} and the plots from {path}")
    return res


# ---------------------------------------------------------------------------------------------- run

def reproduce(data: str | None, out: str | Path, quick: bool = False, sequences: str | None = None,
              episodes: int | None = None, prune_episodes: int | None = None, seed: int = 0,
              train_sequences: str | None = None, meta_batch: int = 4, progress: bool = False,
              command: str = "", eval_seeds: list[int] | None = None, workers: int = 1) -> dict:
    """Train what is missing (cached in ``OUT/checkpoints``), evaluate every row on ``val`` in one
    :func:`evaluate` call (``workers`` processes over sequences) and write ``OUT/README.md`` and results."""

    t_all = time.time()
    out = check_output_dir(out)
    root = data_root(data)
    # load both splits before any training: missing data fails now, not after an hour
    train_seqs = load_split(root, "train", train_sequences)
    val_seqs = load_split(root, "val", sequences)
    if not train_seqs:
        raise MetaRTTError(f"the train split of {root} is empty")
    if len(train_seqs) < 2:
        raise MetaRTTError(f"reproduce needs at least 2 train sequences (hard examples); {root} has {len(train_seqs)}")
    if not val_seqs:
        raise MetaRTTError(f"the val split of {root} is empty")
    if quick and sequences is None:
        val_seqs = _shortest(val_seqs, QUICK_VAL_SEQUENCES)
    for s in val_seqs:
        s.init_box  # a bad first box fails before training
    meta_episodes = episodes if episodes is not None else (QUICK_META_EPISODES if quick else FULL_META_EPISODES)
    if prune_episodes is None:
        prune_episodes = (episodes if episodes is not None else QUICK_PRUNE_EPISODES) if quick else FULL_PRUNE_EPISODES
    if meta_episodes < 1 or prune_episodes < 1:
        raise MetaRTTError("--episodes and --prune-episodes must be at least 1")
    pretrained = PRETRAINED if PRETRAINED.exists() else None
    if pretrained is None:
        raise MetaRTTError(f"the shipped pretrain checkpoint {PRETRAINED} is missing; run "
                           f"'python -m metartt_lite pretrain' first")
    dev = device()
    _log(f"{'quick' if quick else 'full'} mode: {meta_episodes} meta / {prune_episodes} prune episodes, "
         f"train {len(train_seqs)} sequences, val {', '.join(s.name for s in val_seqs)}; device {dev}")

    t0 = time.time()
    seed_everything(seed)
    training = _train_all(train_seqs, out / "checkpoints", meta_episodes, prune_episodes, seed, meta_batch,
                          progress, pretrained)
    t_train = time.time() - t0

    names = list(dict.fromkeys(n for _t, rows in TABLES.values() for n, _l in rows))
    names = [n for n in names if n not in PEER_TRACKERS] + list(PEER_TRACKERS)
    seed_everything(seed)
    _log(f"evaluating {len(names)} trackers on {len(val_seqs)} val sequences in one evaluate call"
         f"{f' ({workers} workers)' if workers > 1 else ''}")
    t0 = time.time()
    eval_seeds = list(eval_seeds) if eval_seeds else [seed]
    factory = _Factory(training, pretrained)
    # each finished sequence x tracker x seed is kept under OUT/runs/ until results.json is written: a killed
    # reproduce run again with the same arguments re-evaluates only what is left (one line per sequence)
    res = evaluate(names, val_seqs, factory, out_dir=out, progress=progress, workers=workers,
                   config={"command": "reproduce", "split": "val", "seed": seed, "quick": quick,
                           "meta_episodes": meta_episodes, "prune_episodes": prune_episodes,
                           "meta_batch": meta_batch, "data": str(root)},
                   seeds=eval_seeds, log=None if progress else _log)
    t_eval = time.time() - t0
    pruned = [v["tracker"] for v in training.values() if v["kind"] == "prune"]
    rates = _first_frame_prune_rates(pruned, val_seqs, factory, eval_seeds)
    prune_rates = {n: prune_rate_summary(v) for n, v in rates.items() if v}
    res["prune_rates"] = prune_rates
    res["tables"] = _rows(res, prune_rates)
    res["reproduce"] = {
        "command": command or "reproduce", "quick": quick, "seed": seed, "seeds": {"training": seed, "trackers": eval_seeds},
        "meta_episodes": meta_episodes, "prune_episodes": prune_episodes, "meta_batch": meta_batch,
        "meta_lr_rates": META_LR_RATES, "data": str(root), "out": str(out),
        "train_sequences": [s.name for s in train_seqs], "val_sequences": [s.name for s in val_seqs],
        "val_frames": int(sum(len(s) for s in val_seqs)), "torch_device": str(dev), "git_commit": git_commit(),
        "pretrained": str(pretrained), "training": training, "training_wall_time_s": t_train,
        "evaluation_wall_time_s": t_eval, "total_wall_time_s": time.time() - t_all,
        "paper": {"numbers": {k: (None if v is None else {"succ": v[0], "prec": v[1], "fps": v[2]}) for k, v in PAPER.items()},
                  "prune_rate": PAPER_PRUNE_RATE},
        "finished": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
    }
    atomic_write_json(out / "results.json", res)
    text = _markdown(res)
    atomic_write(out / "README.md", lambda tmp: Path(tmp).write_text(text))
    print(format_table(res))
    _log(f"wrote {out / 'README.md'}, results.json, success.png, precision.png, success.html "
         f"({res['reproduce']['total_wall_time_s']:.0f} s)")
    return res


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="train every variant and write the paper's Tables 1-3 (val split)",
                       description="Train the meta and pruning variants (cached in OUT/checkpoints), evaluate every "
                                   "row on the val split in one run and write OUT/README.md (Tables 1-3 beside the "
                                   "paper's numbers), results.json and plots. Full mode takes ~2.5 h on 2 CPU "
                                   "cores; --quick under 15 min.")
    p.add_argument("--data", default=None, help="data folder with splits.json (default: $METARTT_DATA, else ../shared/data)")
    p.add_argument("--out", required=True, help="output folder (checkpoints are cached in OUT/checkpoints)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_META_EPISODES} meta / {QUICK_PRUNE_EPISODES} prune episodes and the "
                        f"{QUICK_VAL_SEQUENCES} shortest val sequences")
    p.add_argument("--sequences", default=None, help="comma-separated val sequences (default: all; --quick: 2 shortest)")
    p.add_argument("--episodes", type=int, default=None,
                   help=f"meta episodes per meta variant (default {FULL_META_EPISODES}; --quick {QUICK_META_EPISODES}); "
                        f"with --quick also the prune episodes")
    p.add_argument("--prune-episodes", type=int, default=None,
                   help=f"episodes per pruning variant (default {FULL_PRUNE_EPISODES}; --quick: as --episodes, "
                        f"else {QUICK_PRUNE_EPISODES})")
    p.add_argument("--train-sequences", default=None, help="comma-separated train sequences (default: all)")
    p.add_argument("--meta-batch", type=int, default=4, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help="training seed (and the tracker seed without --seeds)")
    p.add_argument("--seeds", default=None, help="tracker seeds of the evaluation, e.g. 0,1,2 (default: --seed)")
    p.add_argument("--workers", type=int, default=1,
                   help="evaluation processes (sequences split between them; torch threads divided; FPS then "
                        "compares only within this run)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--render-only", action="store_true",
                   help="rewrite OUT/README.md and the plots from OUT/results.json of an earlier run (no training, "
                        "no evaluation)")
    p.set_defaults(func=_run)


def _command(args: argparse.Namespace) -> str:
    """The command line this run is equivalent to (from the parsed arguments, not sys.argv)."""
    parts = ["python -m metartt_lite reproduce"]
    for k in ("data", "out", "sequences", "episodes", "prune_episodes", "train_sequences", "seed", "seeds", "workers"):
        v = getattr(args, k, None)
        if v is not None and not (k == "workers" and v == 1):
            parts.append(f"--{k.replace('_', '-')} {v}")
    if args.quick:
        parts.append("--quick")
    if args.meta_batch != 4:
        parts.append(f"--meta-batch {args.meta_batch}")
    return " ".join(parts)


def _run(args: argparse.Namespace) -> int:
    if args.render_only:
        render(Path(args.out), command=f"python -m metartt_lite reproduce --out {args.out} --render-only")
        return 0
    progress = not args.quiet and sys.stderr.isatty()
    reproduce(args.data, Path(args.out), quick=args.quick, sequences=args.sequences, episodes=args.episodes,
              prune_episodes=args.prune_episodes, seed=args.seed, train_sequences=args.train_sequences,
              meta_batch=args.meta_batch, progress=progress,
              command=_command(args), eval_seeds=parse_seeds(args.seeds) if args.seeds else None,
              workers=args.workers)
    return 0
