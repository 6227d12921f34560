"""got10k's own experiment code runs our tracker through :class:`metartt_lite.got10k_adapter.Got10kTracker`,
and got10k's success AUC equals our ``evaluate``'s on the same boxes.

The dataset is made here from embedded sample videos, in the OTB layout got10k's ``ExperimentOTB`` reads
(``NAME/img/*.jpg`` + ``groundtruth_rect.txt``, names from got10k's OTB-2015 list). got10k downloads any
OTB-2015 sequence folder that is missing, so the others are present as empty folders (got10k skips folders
without annotations) and its ``download`` function is replaced by one that fails the test: nothing
leaves the machine."""
from __future__ import annotations

import numpy as np
import pytest

got10k = pytest.importorskip("got10k", reason="got10k is not installed (pip install got10k; CI installs it "
                                              "through the 'test' extra)")

from got10k.datasets import otb as g_otb  # noqa: E402
from got10k.experiments import ExperimentOTB  # noqa: E402

from metartt_lite.data.sequences import load_split  # noqa: E402
from metartt_lite.evaluation.ope import evaluate  # noqa: E402
from metartt_lite.got10k_adapter import Got10kTracker  # noqa: E402
from metartt_lite.track.registry import make_tracker  # noqa: E402
from metartt_lite.data.samples import make_sample, write_sample_as_otb  # noqa: E402
from metartt_lite.core.utils import MetaRTTError  # noqa: E402

SEQS = {"Basketball": ("translation", 0), "Car4": ("scale", 1), "Jump": ("occlusion", 2)}
N = 8


@pytest.fixture(scope="module")
def otb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("otb2015")
    names = g_otb.OTB._OTB__version_dict[2015]   # got10k's own list of the benchmark's sequences
    assert set(SEQS) <= set(names)
    for n in names:
        (root / n).mkdir(exist_ok=True)
    for n, (preset, seed) in SEQS.items():
        write_sample_as_otb(make_sample(preset, seed=seed, n_frames=N), root / n)
    return root


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    def no_download(*a, **k):
        raise AssertionError(f"got10k tried to download {a}")
    monkeypatch.setattr(g_otb, "download", no_download)


class Replay:
    """A 'tracker' that returns given boxes, so our evaluate scores exactly got10k's boxes: the sequence is
    recognised by its initial box."""
    name = "replay"

    def __init__(self, by_init: dict):
        self.by_init, self.boxes, self.i = by_init, None, 0

    def init(self, frame, box):
        self.boxes, self.i = self.by_init[tuple(np.round(np.asarray(box, float), 3))], 0

    def update(self, frame):
        self.i += 1
        return self.boxes[self.i], 1.0


@pytest.mark.parametrize("tname", ["kcf", pytest.param("metartt", marks=pytest.mark.slow)])
def test_experiment_otb_runs_our_tracker_and_auc_matches(otb_root, tmp_path, tname):
    adapter = Got10kTracker(tname, seed=0, dev="cpu" if tname == "metartt" else None)
    exp = ExperimentOTB(str(otb_root), version=2015, result_dir=str(tmp_path / "results"),
                        report_dir=str(tmp_path / "reports"))
    assert sorted(exp.dataset.seq_names) == sorted(SEQS)
    exp.run(adapter)
    perf = exp.report([adapter.name])[adapter.name]
    recorded = {n: np.loadtxt(tmp_path / "results" / "OTB2015" / tname / f"{n}.txt", delimiter=",")
                for n in SEQS}
    seqs = load_split(otb_root, names=sorted(SEQS))
    for s in seqs:   # got10k read the same 1-based file; its boxes are 1-based too
        np.testing.assert_allclose(recorded[s.name][0], s.groundtruth[0] + [1, 1, 0, 0], atol=1e-3)

    # (1) the same boxes scored by our evaluate: got10k's success AUC, per sequence and overall
    by_init = {tuple(np.round(s.groundtruth[0], 3)): recorded[s.name] - [1, 1, 0, 0] for s in seqs}
    res = evaluate(["replay"], seqs, lambda _n, _s: Replay(by_init), out_dir=None, progress=False)
    r = res["trackers"]["replay"]
    for n in SEQS:
        assert r["sequences"][n]["auc"] == pytest.approx(perf["seq_wise"][n]["success_score"], abs=1e-9), n
        assert r["sequences"][n]["precision"] == pytest.approx(perf["seq_wise"][n]["precision_score"], abs=1e-9), n
    assert r["auc"] == pytest.approx(perf["overall"]["success_score"], abs=1e-9)
    assert 0.2 < r["auc"] <= 1.0

    # (2) our own run of the same tracker gives the same boxes as got10k's run (same frames, same seed)
    mine = evaluate([tname], seqs, lambda n, seed: make_tracker(n, seed=seed, dev="cpu" if n == "metartt" else None),
                    out_dir=None, progress=False)
    for n in SEQS:
        b = np.asarray(mine["trackers"][tname]["sequences"][n]["boxes"], dtype=float)
        np.testing.assert_allclose(b, recorded[n] - [1, 1, 0, 0], atol=2e-3, err_msg=n)   # got10k writes 3 decimals
    assert mine["trackers"][tname]["auc"] == pytest.approx(perf["overall"]["success_score"], abs=1e-9)


def test_adapter_box_convention_and_errors():
    """one_based: got10k's 1-based box in, 1-based box out; a stationary scene keeps the box where it was."""
    v = make_sample("translation", seed=0, n_frames=2)
    t = Got10kTracker("kcf")
    gt1 = v.groundtruth[0] + [1, 1, 0, 0]
    from PIL import Image
    t.init(Image.fromarray(v.frames[0]), gt1)
    out = t.update(Image.fromarray(v.frames[0]))   # the same frame again: the target did not move
    np.testing.assert_allclose(out, gt1, atol=1.0)
    # the same 0-based box reaches the tracker either way, so the answers differ by exactly the 1-px offset
    t0 = Got10kTracker("kcf", one_based=False)
    t0.init(Image.fromarray(v.frames[0]), v.groundtruth[0])
    f1 = Image.fromarray(v.frames[1])
    t.init(Image.fromarray(v.frames[0]), gt1)
    np.testing.assert_allclose(t.update(f1) - t0.update(f1), [1, 1, 0, 0], atol=1e-9)
    with pytest.raises(MetaRTTError, match="unknown tracker 'nope'"):
        Got10kTracker("nope")
    with pytest.raises(MetaRTTError, match="before init"):
        Got10kTracker("kcf").update(Image.fromarray(v.frames[0]))


def test_make_tracker_accepts_a_device_name():
    assert str(make_tracker("metartt", dev="cpu").device) == "cpu"
    with pytest.raises(MetaRTTError, match="not a device name"):
        make_tracker("kcf", dev="gpu-please")
