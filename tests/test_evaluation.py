"""OTB OPE metrics, run_sequence and evaluate() on duck-typed fake sequences and trackers."""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from metartt_lite.evaluation.ope import (
    ERROR_THRESHOLDS, IOU_THRESHOLDS, auc, evaluate, format_table, load_results, precision_at,
    precision_curve, run_sequence, sequence_metrics, success_curve,
)
from metartt_lite.core.utils import MetaRTTError


# ------------------------------------------------------------------------------------------- fakes
class FakeSequence:
    """A white rectangle moving on black; rows of ``absent`` have NaN ground truth and no target."""

    def __init__(self, name="seqA", n=12, W=64, H=48, step=(2, 1), size=(10, 8), absent=(), delay=0.0):
        self.name = name
        self.n = n
        self.W, self.H = W, H
        self.delay = delay
        gt = np.array([[4 + step[0] * i, 5 + step[1] * i, size[0], size[1]] for i in range(n)], float)
        for i in absent:
            gt[i] = np.nan
        self.groundtruth = gt
        self.init_box = gt[0].copy()
        self.frame_size = (W, H)

    def __len__(self):
        return self.n

    def frame(self, i):
        if self.delay:
            time.sleep(self.delay)
        f = np.zeros((self.H, self.W, 3), np.uint8)
        g = self.groundtruth[i] if i < len(self.groundtruth) else np.full(4, np.nan)
        if np.all(np.isfinite(g)):
            x, y, w, h = g.astype(int)
            f[y:y + h, x:x + w] = 255
        return f

    def frames(self):
        for i in range(len(self)):
            yield self.frame(i)


class OracleTracker:
    """Returns the bounding box of the white pixels (= the ground truth); keeps the last box when absent."""
    name = "oracle"

    def init(self, frame, box):
        self.box = np.asarray(box, float)

    def update(self, frame):
        ys, xs = np.nonzero(frame[..., 0] > 128)
        if len(xs) == 0:
            return self.box.copy(), 0.0
        self.box = np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], float)
        return self.box.copy(), 1.0


class ConstantTracker:
    name = "constant"

    def init(self, frame, box):
        self.box = np.asarray(box, float)

    def update(self, frame):
        return self.box.copy(), 0.5


class SleepyTracker(ConstantTracker):
    name = "sleepy"

    def update(self, frame):
        time.sleep(0.01)
        return super().update(frame)


class BoomTracker(ConstantTracker):
    name = "boom"

    def __init__(self, at=3):
        self.at = at

    def init(self, frame, box):
        super().init(frame, box)
        self.i = 0

    def update(self, frame):
        self.i += 1
        if self.i == self.at:
            raise ValueError("kaboom")
        return super().update(frame)


TRACKERS = {"oracle": OracleTracker, "constant": ConstantTracker, "sleepy": SleepyTracker, "boom": BoomTracker}


def make_tracker(name, seed=0):
    return TRACKERS[name]()


# ------------------------------------------------------------------------------------------ metrics
def test_thresholds():
    assert len(IOU_THRESHOLDS) == 21 and IOU_THRESHOLDS[10] == 0.5 and IOU_THRESHOLDS[-1] == 1.0
    assert list(ERROR_THRESHOLDS) == list(range(51))


def test_success_curve_by_hand():
    c = success_curve([0.0, 0.5, 1.0])
    # t = 0.00 .. 0.45: 0.5 and 1.0 are > t -> 2/3;  t = 0.5: only 1.0 (0.5 is not > 0.5) -> 1/3;
    # t = 0.55 .. 0.95: only 1.0 -> 1/3;  t = 1.0: nothing (1.0 is not > 1.0) -> 0
    expected = np.array([2 / 3] * 10 + [1 / 3] * 10 + [0.0])
    np.testing.assert_allclose(c, expected)
    assert c[10] == pytest.approx(1 / 3)  # strict '>' at exactly 0.5
    assert auc(c) == pytest.approx((10 * 2 / 3 + 10 * 1 / 3) / 21)


def test_auc_perfect_and_zero():
    assert auc(success_curve(np.ones(7))) == pytest.approx(20 / 21)
    assert auc(success_curve(np.zeros(7))) == 0.0
    assert auc(success_curve([np.nan, 1.0])) == pytest.approx(10 / 21)  # NaN IoU counts as 0


def test_precision_by_hand():
    errs = [0.0, 20.0, 21.0]
    assert precision_at(errs) == pytest.approx(2 / 3)  # <= 20 includes exactly 20
    c = precision_curve(errs)
    assert c.shape == (51,)
    assert c[0] == pytest.approx(1 / 3) and c[19] == pytest.approx(1 / 3)
    assert c[20] == pytest.approx(2 / 3) and c[21] == pytest.approx(1.0) and c[50] == 1.0
    assert precision_at([np.inf, np.nan, 3.0]) == pytest.approx(1 / 3)


def test_empty_curves_are_nan():
    assert np.all(np.isnan(success_curve([])))
    assert np.all(np.isnan(precision_curve([])))


def test_sequence_metrics_excludes_nan_groundtruth():
    gt = np.array([[0, 0, 10, 10], [np.nan] * 4, [10, 10, 10, 10], [20, 20, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [50, 50, 10, 10], [15, 10, 10, 10], [np.nan] * 4], float)
    m = sequence_metrics(pred, gt)
    assert m["n_valid"] == 3
    np.testing.assert_allclose(m["ious"], [1.0, 50 / 150, 0.0])   # NaN prediction -> IoU 0
    np.testing.assert_allclose(m["center_errors"], [0.0, 5.0, np.inf])  # ... and error inf
    np.testing.assert_allclose(m["success_curve"], success_curve([1.0, 1 / 3, 0.0]))
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["auc"] == pytest.approx(auc(success_curve([1.0, 1 / 3, 0.0])))
    none = sequence_metrics(pred[:2], np.full((2, 4), np.nan))
    assert none["n_valid"] == 0 and none["auc"] is None and none["precision"] is None
    with pytest.raises(MetaRTTError):
        sequence_metrics(pred, gt[:2])


# ------------------------------------------------------------------------------------- run_sequence
def test_run_sequence_oracle_and_layout():
    seq = FakeSequence(n=10)
    ticks = []
    r = run_sequence(OracleTracker(), seq, progress=ticks.append)
    assert ticks == list(range(10))
    assert r["boxes"].shape == (10, 4) and r["scores"].shape == (10,) and r["times"].shape == (10,)
    np.testing.assert_allclose(r["boxes"], seq.groundtruth)
    assert r["scores"][0] == 1.0 and r["times"][0] == r["init_time"]
    assert r["decode_time"] >= 0.0


def test_run_sequence_decode_not_timed():
    seq = FakeSequence(n=6, delay=0.03)
    r = run_sequence(ConstantTracker(), seq)
    assert r["decode_time"] >= 6 * 0.03 * 0.9
    assert r["times"].sum() < 0.03  # the sleeps happen while decoding, outside the tracker's timer


def test_run_sequence_minimal_duck_type():
    class FrameOnly:  # no frames() iterator and no init_box: frame(i) and groundtruth[0] are used
        def __init__(self, seq):
            self.name, self.groundtruth, self._seq = seq.name, seq.groundtruth, seq

        def __len__(self):
            return len(self._seq)

        def frame(self, i):
            return self._seq.frame(i)

    seq = FrameOnly(FakeSequence(n=5))
    r = run_sequence(OracleTracker(), seq)
    np.testing.assert_allclose(r["boxes"], seq.groundtruth)


def test_error_names_sequence_and_frame():
    with pytest.raises(RuntimeError, match=r"tracker boom failed on seqA frame 3: ValueError: kaboom") as ei:
        run_sequence(BoomTracker(at=3), FakeSequence(n=8))
    assert isinstance(ei.value.__cause__, ValueError)
    with pytest.raises(RuntimeError, match="on seqZ frame 3"):
        evaluate(["boom"], [FakeSequence(name="seqZ", n=8)], make_tracker, progress=False)


# ------------------------------------------------------------------------------------------ evaluate
def test_evaluate_writes_exact_layout(tmp_path):
    seqs = [FakeSequence("seqA", n=12, step=(4, 3), absent=(5, 6)), FakeSequence("seqB", n=9, step=(5, 4))]
    res = evaluate(["oracle", "constant"], seqs, make_tracker, out_dir=tmp_path, progress=False,
                   config={"note": "unit test"})
    assert set(res) == {"device", "config", "trackers", "wall_time", "created", "decode_time"}
    assert isinstance(res["device"], str) and "torch threads" in res["device"]
    assert res["config"]["note"] == "unit test"
    assert list(res["trackers"]) == ["oracle", "constant"]
    for tname, t in res["trackers"].items():
        assert set(t) == {"seeds", "deterministic", "auc", "auc_std", "auc_min", "auc_max", "precision",
                          "precision_std", "fps", "fps_with_init", "fps_e2e", "init_time", "success_curve", "success_curve_min",
                          "success_curve_max", "precision_curve", "precision_curve_min", "precision_curve_max",
                          "per_seed", "sequences"}
        assert t["seeds"] == [0] and t["auc_std"] == 0.0 and t["auc_min"] == t["auc_max"] == t["auc"]
        assert len(t["success_curve"]) == 21 and len(t["precision_curve"]) == 51
        assert set(t["sequences"]) == {"seqA", "seqB"}
        for sn, s in t["sequences"].items():
            assert set(s) == {"auc", "precision", "fps", "fps_e2e", "fps_with_init", "init_time", "n_frames",
                              "boxes", "scores", "success", "seeds"}
            assert s["n_frames"] == len(s["boxes"]) == len(s["scores"]) == len(s["success"])
            assert s["success"] == [True] + [v > 0 for v in s["scores"][1:]]  # no flag of its own: score > 0
            assert all(len(b) == 4 for b in s["boxes"])
            assert s["fps"] > 0 and s["fps_with_init"] > 0 and 0 < s["fps_e2e"] <= s["fps"]
    o = res["trackers"]["oracle"]
    assert o["auc"] == pytest.approx(20 / 21) and o["precision"] == 1.0
    assert o["sequences"]["seqA"]["auc"] == pytest.approx(20 / 21)  # absent frames excluded
    c = res["trackers"]["constant"]
    assert c["auc"] < 0.3 and c["precision"] < 0.5
    # overall curve = mean of the per-sequence curves
    per = [sequence_metrics(np.array(c["sequences"][s.name]["boxes"]), s.groundtruth)["success_curve"]
           for s in seqs]
    np.testing.assert_allclose(c["success_curve"], np.mean(per, axis=0))
    assert c["auc"] == pytest.approx(np.mean([c["sequences"][s]["auc"] for s in ("seqA", "seqB")]))

    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == res
    assert load_results(tmp_path) == res
    assert load_results(tmp_path / "results.json") == res
    for name, magic in [("success.png", b"\x89PNG"), ("precision.png", b"\x89PNG"), ("success.html", b"<")]:
        data = (tmp_path / name).read_bytes()
        assert len(data) > 1000 and data.startswith(magic), name
    assert b"plotly" in (tmp_path / "success.html").read_bytes()

    table = format_table(res)
    lines = table.splitlines()
    assert len(lines) == 4 and "AUC" in lines[0] and "Prec@20" in lines[0] and "AUC seqA" in lines[0]
    assert "seeds" in lines[0] and "std" in lines[0] and "worst" in lines[0] and "best" in lines[0]
    # the FPS column is as wide as its widest value (a trivial tracker on a fast CPU: 7+ digits)
    assert re.search(r"\|\s+FPS \|", lines[0]) and "FPS e2e" in lines[0]
    assert lines[2].startswith("| oracle") and "0.952" in lines[2]  # best first
    assert "AUC seqA" not in format_table(res, max_sequence_columns=1)


def test_evaluate_fps_definitions():
    seq = FakeSequence("s", n=6)
    res = evaluate(["sleepy"], [seq], make_tracker, progress=False)
    t = res["trackers"]["sleepy"]
    s = t["sequences"]["s"]
    assert s["fps"] <= 100.0 + 1e-6           # 5 updates of >= 10 ms each
    assert s["fps_with_init"] <= 6 / 0.05 + 1e-6
    assert t["fps"] == pytest.approx(s["fps"]) and t["init_time"] == pytest.approx(s["init_time"])


def test_evaluate_fps_e2e_adds_the_decode_time():
    """fps_e2e = update frames / (update time + decode time of those frames): with 20 ms to decode a
    frame and >= 10 ms per update it is at most 1 / 0.03 and below the tracker-only fps."""
    seq = FakeSequence("slow", n=6, delay=0.02)
    res = evaluate(["sleepy"], [seq], make_tracker, progress=False)
    t = res["trackers"]["sleepy"]
    s = t["sequences"]["slow"]
    assert s["fps_e2e"] <= 1 / 0.03 + 1e-6 and s["fps_e2e"] < s["fps"]
    assert res["decode_time"] >= 6 * 0.02
    per = t["per_seed"]["0"]
    # the definition, from the recorded times: 1 / fps_e2e = 1 / fps + decode time per frame
    assert 1 / per["fps_e2e"] == pytest.approx(1 / per["fps"] + res["decode_time"] / 6, rel=1e-3)  # + ~µs iterating decoded frames
    assert t["fps_e2e"] == pytest.approx(per["fps_e2e"]) == pytest.approx(s["fps_e2e"])
    # a sequence too big to keep decoded is decoded inside the run: its decode time still counts
    big = evaluate(["sleepy"], [FakeSequence("slow", n=6, delay=0.02)], make_tracker, progress=False,
                   max_decoded_bytes=1)
    assert big["trackers"]["sleepy"]["fps_e2e"] <= 1 / 0.03 + 1e-6


def test_evaluate_all_absent_and_one_frame():
    seqs = [FakeSequence("gone", n=4, absent=(1, 2, 3)), FakeSequence("one", n=1)]
    seqs[0].groundtruth[0] = np.nan  # no valid frame at all; init box stays valid
    res = evaluate(["constant"], seqs, make_tracker, progress=False)
    t = res["trackers"]["constant"]
    assert t["sequences"]["gone"]["auc"] is None
    assert t["sequences"]["one"]["fps"] is None and t["sequences"]["one"]["auc"] == pytest.approx(20 / 21)
    assert t["auc"] == pytest.approx(20 / 21)  # only sequences with valid frames enter the mean
    json.dumps(res, allow_nan=False)  # strict JSON: no NaN / inf


def test_evaluate_rejects_bad_input():
    with pytest.raises(MetaRTTError, match="duplicate sequence"):
        evaluate(["oracle"], [FakeSequence("a"), FakeSequence("a")], make_tracker, progress=False)
    bad = FakeSequence("short", n=5)
    bad.groundtruth = bad.groundtruth[:3]
    with pytest.raises(MetaRTTError, match="short"):
        evaluate(["oracle"], [bad], make_tracker, progress=False)


def test_load_results_errors(tmp_path):
    with pytest.raises(MetaRTTError, match="does not exist"):
        load_results(tmp_path / "nope.json")
    p = tmp_path / "results.json"
    p.write_text('{"device": "cpu", "trackers": {')
    with pytest.raises(MetaRTTError, match="corrupt"):
        load_results(p)
    p.write_text("[1, 2]")
    with pytest.raises(MetaRTTError, match="not a metartt_lite results file"):
        load_results(p)


def test_run_sequence_accepts_a_sample_video():
    """samples.SampleVideo keeps its frames in a list; run_sequence must iterate it, not call it."""
    from metartt_lite.data.samples import make_sample
    from metartt_lite.evaluation.ope import run_sequence
    video = make_sample("translation", seed=0, n_frames=6, size=(96, 72))

    class Oracle:
        name = "oracle"

        def init(self, frame, box):
            self.i = 0

        def update(self, frame):
            self.i += 1
            return video.groundtruth[self.i], 1.0

    out = run_sequence(Oracle(), video)
    np.testing.assert_allclose(out["boxes"], video.groundtruth)


# ------------------------------------------------------------------------------------------- seeds
class NoisyOracle(OracleTracker):
    """The oracle's box shifted by a seed-dependent random offset: a stochastic tracker."""
    name = "noisy"

    def __init__(self, seed=0):
        self.seed = seed

    def init(self, frame, box):
        super().init(frame, box)
        self.rng = np.random.default_rng(self.seed)

    def update(self, frame):
        box, score = super().update(frame)
        return box + np.r_[self.rng.normal(0, 3, 2), 0, 0], score


class DetConstant(ConstantTracker):
    deterministic = True
    name = "det"


class CountingSequence(FakeSequence):
    """Counts frame decodes."""
    decodes = 0

    def frame(self, i):
        CountingSequence.decodes += 1
        return super().frame(i)


def make_seeded(name, seed=0):
    return NoisyOracle(seed) if name == "noisy" else DetConstant() if name == "det" else TRACKERS[name]()


def test_evaluate_seeds_statistics_and_decode_once(tmp_path):
    seqs = [CountingSequence("s1", n=10, step=(3, 2)), CountingSequence("s2", n=8, step=(2, 3))]
    CountingSequence.decodes = 0
    built = []

    def factory(name, seed):
        built.append((name, seed))
        return make_seeded(name, seed)
    res = evaluate(["noisy", "det"], seqs, factory, out_dir=tmp_path, progress=False, seeds=[3, 4, 5])
    assert CountingSequence.decodes == 18          # each sequence decoded once for 2 trackers x 3 seeds
    assert sorted(built) == [("det", 3), ("noisy", 3), ("noisy", 4), ("noisy", 5)]  # each built once
    n, d = res["trackers"]["noisy"], res["trackers"]["det"]
    assert n["seeds"] == [3, 4, 5] and not n["deterministic"]
    assert d["seeds"] == [3] and d["deterministic"]   # run once, whatever the seeds
    per_seed = [n["per_seed"][str(s)]["auc"] for s in (3, 4, 5)]
    assert len(set(per_seed)) == 3                    # the seed matters
    assert n["auc"] == pytest.approx(np.mean(per_seed))
    assert n["auc_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert n["auc_min"] == min(per_seed) and n["auc_max"] == max(per_seed)
    # per-seed AUC = AUC of the mean of that seed's per-sequence curves; per-sequence = mean over seeds
    for s in (3, 4, 5):
        curves = [sequence_metrics(np.array(n["sequences"][q.name]["seeds"][str(s)]["boxes"], float),
                                   q.groundtruth)["success_curve"] for q in seqs]
        assert n["per_seed"][str(s)]["auc"] == pytest.approx(auc(np.mean(curves, axis=0)))
    for q in seqs:
        runs = n["sequences"][q.name]["seeds"]
        assert n["sequences"][q.name]["auc"] == pytest.approx(np.mean([runs[str(s)]["auc"] for s in (3, 4, 5)]))
    # the band spans the seeds
    assert np.all(np.array(n["success_curve_min"]) <= np.array(n["success_curve"]) + 1e-12)
    assert np.all(np.array(n["success_curve"]) <= np.array(n["success_curve_max"]) + 1e-12)
    # same seed, same result (a tracker's init resets it): a second evaluate gives identical boxes
    res2 = evaluate(["noisy"], seqs, make_seeded, progress=False, seeds=[4])
    assert res2["trackers"]["noisy"]["sequences"]["s1"]["boxes"] == n["sequences"]["s1"]["seeds"]["4"]["boxes"]
    table = format_table(res)
    assert "1 (det.)" in table and "| noisy" in table
    with pytest.raises(MetaRTTError, match="duplicate seeds"):
        evaluate(["noisy"], seqs, make_seeded, progress=False, seeds=[1, 1])


def test_evaluate_workers_match_one_process():
    seqs = [FakeSequence("s1", n=10, step=(3, 2)), FakeSequence("s2", n=8, step=(2, 3)),
            FakeSequence("s3", n=6, step=(1, 1))]
    one = evaluate(["noisy", "oracle"], seqs, make_seeded, progress=False, seeds=[0, 1])
    two = evaluate(["noisy", "oracle"], seqs, make_seeded, progress=False, seeds=[0, 1], workers=2)
    for t in ("noisy", "oracle"):
        assert two["trackers"][t]["auc"] == one["trackers"][t]["auc"]
        for q in seqs:
            assert two["trackers"][t]["sequences"][q.name]["seeds"] == {
                k: {**v, "fps": two["trackers"][t]["sequences"][q.name]["seeds"][k]["fps"]}
                for k, v in one["trackers"][t]["sequences"][q.name]["seeds"].items()}
    assert two["config"]["workers"] == 2
    with pytest.raises(MetaRTTError, match="picklable"):
        evaluate(["oracle"], seqs, lambda n, s: OracleTracker(), progress=False, workers=2)


def test_worker_exits_when_its_parent_is_killed(tmp_path):
    """An evaluate worker whose parent died (Ctrl-C'd or killed evaluate) stops within seconds instead of
    tracking on: a parent process starts a child that runs exit_when_orphaned(parent), then is SIGKILLed."""
    import os
    import signal
    import subprocess
    from pathlib import Path
    import sys
    import time as _t
    pid_file = tmp_path / "child.pid"
    child = ("import os, time, sys; from metartt_lite.evaluation.ope import exit_when_orphaned; "
             f"exit_when_orphaned(os.getppid(), interval=0.2); open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
             "time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys, time; "
                               f"subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)"])
    deadline = _t.time() + 120
    while not pid_file.exists() or not pid_file.read_text():
        assert _t.time() < deadline, "the child never started"
        _t.sleep(0.2)
    child_pid = int(pid_file.read_text())
    os.kill(child_pid, 0)  # alive while its parent lives
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = _t.time() + 30
    while True:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        # a zombie (reparented to init and not yet reaped) counts as exited
        try:
            if Path(f"/proc/{child_pid}/stat").read_text().split()[2] == "Z":
                break
        except FileNotFoundError:
            break
        assert _t.time() < deadline, "the orphaned worker kept running"
        _t.sleep(0.2)
