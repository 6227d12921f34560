"""Torch threads and OpenMP's wait policy, side by side, on this machine as it is ("busy") and with every
core deliberately loaded ("loaded": one spinning process per core, started and stopped here).

Each setting runs in its own process (OpenMP reads ``OMP_WAIT_POLICY`` when torch loads), the settings are
interleaved and rotated every repeat so they share the machine's load alike, and each process tracks the
same sample video (720x400, like the issue's first video) with each tracker after a warm-up. Prints
tracker FPS per setting (median over repeats), the package default's FPS against the best setting's, and
the load averages before and after each condition.

    python benchmarks/threads.py                     # busy and loaded, metartt-prune + metartt
    python benchmarks/threads.py --conditions busy --frames 40 --repeats 3

Settings: ``default`` (no variable set: the package's thread policy), ``t1`` / ``t2`` (``METARTT_THREADS``
1 / 2, OpenMP's own wait policy: libgomp spins a while before it sleeps; torch's default before this
policy was 2 threads so), ``t1-passive`` / ``t2-passive`` (also ``OMP_WAIT_POLICY=PASSIVE``: waiting threads
sleep at once). The default should be within 10 % of the best setting in each condition.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    # OMP_WAIT_POLICY="" : libgomp's own default (it says "invalid value" and spins as when unset); an unset
    # variable would get the package's PASSIVE
    "t1": {"METARTT_THREADS": "1", "OMP_WAIT_POLICY": ""},
    "t2": {"METARTT_THREADS": "2", "OMP_WAIT_POLICY": ""},
    "t1-passive": {"METARTT_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
    "t2-passive": {"METARTT_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
    # libgomp spins GOMP_SPINCOUNT times before it sleeps (default 300000; PASSIVE: 0)
    "t2-spin10k": {"METARTT_THREADS": "2", "OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"},
    "t2-spin1k": {"METARTT_THREADS": "2", "OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "1000"},
}
THREAD_VARS = ("METARTT_THREADS", "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")


def child(trackers: list[str], frames: int) -> None:
    """Track the sample with each tracker (after a 5-frame warm-up run); print {tracker: fps} as JSON."""
    import numpy as np
    import torch
    from metartt_lite.data.samples import make_sample
    from metartt_lite.track.registry import make_tracker
    video = make_sample("translation", seed=0, n_frames=frames + 1, size=(720, 400))
    out = {"_wait": os.environ.get("OMP_WAIT_POLICY", "")}
    for name in trackers:
        t = make_tracker(name, seed=0)  # applies the package's thread policy (METARTT_THREADS, else 1)
        out["_threads"] = torch.get_num_threads()
        t.init(video.frames[0], video.init_box)  # warm-up: builds, first-call costs
        for f in video.frames[1:6]:
            t.update(f)
        t.init(video.frames[0], video.init_box)
        t0 = time.perf_counter()
        for f in video.frames[1:]:
            t.update(f)
        out[name] = frames / (time.perf_counter() - t0)
    print(json.dumps(out))


def run_setting(setting: str, trackers: list[str], frames: int, timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(SETTINGS[setting])
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, __file__, "--child", "--trackers", ",".join(trackers), "--frames", str(frames)],
                       env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"error: setting {setting} failed: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def start_load(n: int) -> list[subprocess.Popen]:
    """n processes spinning on a core each (what other users' jobs do to ours)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trackers", default="metartt-prune,metartt")
    ap.add_argument("--frames", type=int, default=40, help="timed frames per tracker")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--conditions", default="busy,loaded", help="busy (the machine as it is), loaded (+1 spinner per core)")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"of {', '.join(SETTINGS)}")
    ap.add_argument("--load", type=int, default=os.cpu_count() or 2, help="spinning processes for 'loaded'")
    ap.add_argument("--json", default="", help="write every measurement here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    trackers = args.trackers.split(",")
    if args.child:
        child(trackers, args.frames)
        return
    import statistics
    settings = args.settings.split(",")
    report = {"cpu_count": os.cpu_count(), "frames": args.frames, "repeats": args.repeats, "conditions": {}}
    for cond in args.conditions.split(","):
        load_before = os.getloadavg()
        procs = start_load(args.load) if cond == "loaded" else []
        runs: dict[str, list[dict]] = {s: [] for s in settings}
        try:
            for rep in range(args.repeats):
                order = settings[rep % len(settings):] + settings[:rep % len(settings)]
                for s in order:
                    runs[s].append(run_setting(s, trackers, args.frames, timeout=600))
        finally:
            stop_load(procs)
        load_after = os.getloadavg()
        med = {s: {t: statistics.median(r[t] for r in runs[s]) for t in trackers} for s in settings}
        report["conditions"][cond] = {"load_before": load_before, "load_after": load_after, "median_fps": med,
                                      "runs": runs}
        print(f"\n== {cond}: load average before {', '.join(f'{v:.2f}' for v in load_before)}, "
              f"after {', '.join(f'{v:.2f}' for v in load_after)}"
              + (f" ({args.load} spinning processes while measuring)" if procs else ""))
        print(f"{'setting':12s}{'threads':>8s}" + "".join(f"{t:>16s}" for t in trackers))
        for s in settings:
            print(f"{s:12s}{runs[s][0]['_threads']:8d}" + "".join(f"{med[s][t]:16.1f}" for t in trackers))
        if "default" in med:
            best = {t: max(med[s][t] for s in settings) for t in trackers}
            print(f"{'default/best':20s}" + "".join(f"{med['default'][t] / best[t]:16.2f}" for t in trackers))
            report["conditions"][cond]["default_over_best"] = {t: med["default"][t] / best[t] for t in trackers}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
