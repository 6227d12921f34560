"""Paired comparison of two trackers over sequences: can a results file tell them apart?

For trackers A and B evaluated on the same sequences (``evaluation.evaluate``, possibly with several
seeds), the per-sequence difference is

    d_s = mean_over_seeds AUC_A(s) − mean_over_seeds AUC_B(s)

(a deterministic tracker has one run, which stands for every seed). The report gives the mean of d_s
over sequences, a percentile bootstrap confidence interval of that mean that resamples **sequences**
with replacement (paired: both trackers keep the same resampled sequences), and the number of sequences
won, tied and lost; the same for precision@20. Pairing removes the between-sequence variance (the
largest part); seeds shrink the within-sequence noise; the number of sequences sets the CI's width.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .ope import load_results, markdown_table
from ..core.utils import MetaRTTError, atomic_write, atomic_write_json

__all__ = ["per_sequence_means", "bootstrap_ci", "compare", "compare_all", "compare_markdown", "write_comparison",
           "compare_file", "verdict", "N_RESAMPLES", "CI_LEVEL", "MIN_SEQUENCES_FOR_VERDICT"]

N_RESAMPLES = 10_000
CI_LEVEL = 0.95
# A percentile bootstrap over fewer sequences than this has too few distinct resamples (2 sequences:
# 3 distinct means) for its interval to mean anything: no verdict is given, and the reason is printed.
MIN_SEQUENCES_FOR_VERDICT = 5
METRICS = ("auc", "precision")


def per_sequence_means(results: dict, tracker: str, metric: str = "auc") -> dict[str, float]:
    """{sequence: mean over seeds of ``metric``} of one tracker; sequences with an undefined value are left out.

    Works on results written before seeds existed (one value per sequence)."""
    trackers = results.get("trackers", {})
    if tracker not in trackers:
        raise MetaRTTError(f"tracker {tracker!r} is not in the results; it has: {', '.join(trackers)}")
    out = {}
    for sn, s in trackers[tracker].get("sequences", {}).items():
        runs = s.get("seeds")
        vals = [r.get(metric) for r in runs.values()] if runs else [s.get(metric)]
        vals = [v for v in vals if v is not None]
        if vals:
            out[sn] = float(np.mean(vals))
    return out


def bootstrap_ci(diffs: np.ndarray, n_resamples: int = N_RESAMPLES, level: float = CI_LEVEL,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(diffs)``: resample the entries with replacement ``n_resamples``
    times (NumPy ``default_rng(seed)``) and take the (1−level)/2 and (1+level)/2 quantiles."""
    d = np.asarray(diffs, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise MetaRTTError("no paired values to bootstrap")
    if n_resamples < 1:
        raise MetaRTTError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < level < 1:
        raise MetaRTTError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def compare(results: dict, a: str, b: str, n_resamples: int = N_RESAMPLES, level: float = CI_LEVEL,
            seed: int = 0) -> dict[str, Any]:
    """Paired comparison A − B over the sequences both have (see the module docstring).

    Returns ``{"a", "b", "seeds_a", "seeds_b", "n_sequences", "sequences", "n_resamples", "level",
    "bootstrap_seed", "auc": {...}, "precision": {...}}`` where each metric holds ``mean_a``, ``mean_b``,
    ``diff`` (mean of d_s), ``ci`` [lo, hi], ``ci_contains_zero``, ``wins`` / ``ties`` / ``losses``
    (sequences where d_s > 0 / = 0 / < 0) and ``per_sequence`` {seq: d_s}."""
    trackers = results.get("trackers", {})
    out: dict[str, Any] = {"a": a, "b": b, "seeds_a": trackers.get(a, {}).get("seeds", [0]),
                           "seeds_b": trackers.get(b, {}).get("seeds", [0]),
                           "n_resamples": n_resamples, "level": level, "bootstrap_seed": seed}
    for metric in METRICS:
        ma, mb = per_sequence_means(results, a, metric), per_sequence_means(results, b, metric)
        common = [s for s in ma if s in mb]
        if not common:
            raise MetaRTTError(f"{a} and {b} share no sequence with a defined {metric}")
        d = np.array([ma[s] - mb[s] for s in common])
        lo, hi = bootstrap_ci(d, n_resamples, level, seed)
        out[metric] = {"mean_a": float(np.mean([ma[s] for s in common])),
                       "mean_b": float(np.mean([mb[s] for s in common])),
                       "diff": float(d.mean()), "ci": [lo, hi], "ci_contains_zero": bool(lo <= 0 <= hi),
                       "wins": int((d > 0).sum()), "ties": int((d == 0).sum()), "losses": int((d < 0).sum()),
                       "per_sequence": {s: float(v) for s, v in zip(common, d)}}
        if metric == "auc":
            out["sequences"] = common
            out["n_sequences"] = len(common)
    out["verdict"] = verdict(out)
    return out


def compare_all(results: dict, baseline: str, others: list[str] | None = None, **kw: Any) -> list[dict[str, Any]]:
    """Every other tracker in ``results`` (or ``others``) against ``baseline``."""
    names = others if others is not None else [t for t in results.get("trackers", {}) if t != baseline]
    return [compare(results, t, baseline, **kw) for t in names]


def verdict(c: dict[str, Any], metric: str = "auc") -> str:
    """The reading of one comparison: which tracker is ahead (CI excludes 0), no resolved difference, or no
    verdict at all below :data:`MIN_SEQUENCES_FOR_VERDICT` sequences (with the reason)."""
    m = c[metric]
    n = len(m["per_sequence"])
    if n < MIN_SEQUENCES_FOR_VERDICT:
        return (f"no verdict: {n} sequence{'s' if n != 1 else ''}; a bootstrap over sequences needs at least "
                f"{MIN_SEQUENCES_FOR_VERDICT}")
    if m["ci_contains_zero"]:
        return "CI contains 0: no resolved difference"
    return f"{c['a'] if m['diff'] > 0 else c['b']} ahead (CI excludes 0)"


def _pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def compare_markdown(comparisons: list[dict[str, Any]]) -> str:
    """A markdown table, AUC and precision differences in points (×100) with their CIs and win counts."""
    if not comparisons:
        return "(no comparison)"
    c0 = comparisons[0]
    head = ["A", "B", "seqs", "seeds A/B", "AUC A", "AUC B", "ΔAUC", f"{int(100 * c0['level'])}% CI",
            "A wins", "ΔPrec", "CI (Prec)", "A wins (Prec)", "verdict"]
    rows = []
    for c in comparisons:
        au, pr = c["auc"], c["precision"]
        rows.append([c["a"], c["b"], str(c["n_sequences"]), f"{len(c['seeds_a'])}/{len(c['seeds_b'])}",
                     f"{100 * au['mean_a']:.1f}", f"{100 * au['mean_b']:.1f}", _pts(au["diff"]),
                     f"[{_pts(au['ci'][0])}, {_pts(au['ci'][1])}]", f"{au['wins']}/{c['n_sequences']}",
                     _pts(pr["diff"]), f"[{_pts(pr['ci'][0])}, {_pts(pr['ci'][1])}]",
                     f"{pr['wins']}/{len(pr['per_sequence'])}", verdict(c)])
    note = (f"\n\nΔ = A − B in points (×100), averaged over seeds within each sequence; CI: percentile "
            f"bootstrap over sequences, {c0['n_resamples']} resamples, NumPy seed {c0['bootstrap_seed']}.")
    return markdown_table(head, rows) + note


def write_comparison(comparisons: list[dict[str, Any]], out: str | Path, source: str | None = None) -> tuple[Path, Path]:
    """Write ``OUT.json`` and ``OUT.md`` (``out`` without its suffix) atomically; return both paths."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".json", ".md") else out
    js, md = stem.with_suffix(".json"), stem.with_suffix(".md")
    atomic_write_json(js, {"source": source, "comparisons": comparisons})
    text = compare_markdown(comparisons) + "\n"
    atomic_write(md, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return js, md


def compare_file(path: str | Path, a: str | None, b: str | None, baseline: str | None = None,
                 **kw: Any) -> list[dict[str, Any]]:
    """``compare`` on a ``results.json`` (or its folder): one pair ``a``/``b``, or all against ``baseline``."""
    results = load_results(path)
    if baseline is not None:
        if baseline not in results["trackers"]:
            raise MetaRTTError(f"baseline {baseline!r} is not in {path}; it has: {', '.join(results['trackers'])}")
        others = [a] if a else None
        return compare_all(results, baseline, others, **kw)
    if not a or not b:
        raise MetaRTTError("give two trackers A B, or --baseline B")
    return [compare(results, a, b, **kw)]
