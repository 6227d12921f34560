"""Your own OTB folders through the benchmark toolkits, end to end and offline (issue 27, item 3):
``vot-workspace`` writes a VOT workspace that ``vot evaluate`` and ``vot analysis`` run on, and
``got10k-layout`` writes GOT-10k's val layout that ``ExperimentGOT10k`` runs and reports on. The sequence
names are not OTB's (the toolkits' OTB readers would refuse or download them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metartt_lite import cli
from metartt_lite.data.samples import make_sample, write_sample_as_otb
from metartt_lite.data.sequences import load_got10k_sequence, load_sequence

REPO = Path(__file__).resolve().parents[1]
N = 12


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    root = tmp_path_factory.mktemp("mine")
    for name, preset in (("my_cup", "occlusion"), ("my_cat", "scale")):
        write_sample_as_otb(make_sample(preset, seed=1, n_frames=N), root / name)
    return root


def test_got10k_layout_runs_in_got10k(src, tmp_path, capsys):
    pytest.importorskip("got10k", reason="got10k is not installed (pip install got10k; the 'test' extra has it)")
    from got10k.experiments import ExperimentGOT10k
    from metartt_lite.got10k_adapter import Got10kTracker
    rc = cli.main(["got10k-layout", str(src), str(tmp_path / "GOT")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    val = tmp_path / "GOT" / "val"
    assert (val / "list.txt").read_text().split() == ["my_cat", "my_cup"]
    for name in ("my_cat", "my_cup"):
        d = val / name
        for f in ("meta_info.ini", "cover.label", "absence.label", "cut_by_image.label", "groundtruth.txt"):
            assert (d / f).is_file(), f
        # our GOT-10k reader gives back the OTB sequence's boxes (both 1-based on disk)
        np.testing.assert_allclose(load_got10k_sequence(d).groundtruth, load_sequence(src / name).groundtruth, atol=1e-3)
    exp = ExperimentGOT10k(str(tmp_path / "GOT"), subset="val", result_dir=str(tmp_path / "res"),
                           report_dir=str(tmp_path / "rep"))
    tracker = Got10kTracker("kcf")
    exp.run(tracker)
    perf = exp.report([tracker.name])[tracker.name]["overall"]
    assert 0.3 < perf["ao"] <= 1.0, perf


def _vot(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    run_vot = ("import sys, vot.utilities.cli as c; c.check_updates = lambda: (False, None); "
               "sys.argv = ['vot'] + sys.argv[1:]; c.main()")
    env = dict(os.environ, PYTHONPATH=str(REPO), METARTT_DEVICE="cpu")
    return subprocess.run([sys.executable, "-c", run_vot, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_vot_workspace_runs_in_the_vot_toolkit(src, tmp_path, capsys):
    pytest.importorskip("trax", reason="vot-trax is not installed (pip install vot-trax)")
    pytest.importorskip("vot", reason="vot-toolkit is not installed (scripts/install.sh installs it)")
    ws = tmp_path / "WS"
    rc = cli.main(["vot-workspace", str(src), str(ws), "--trackers", "kcf", "--sequences", "my_cup"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "vot evaluate --workspace" in out
    assert (ws / "sequences" / "list.txt").read_text().split() == ["my_cup"]  # one: each starts a server
    assert len(list((ws / "sequences" / "my_cup" / "color").glob("*.jpg"))) == N
    gt = np.loadtxt(ws / "sequences" / "my_cup" / "groundtruth.txt", delimiter=",")
    np.testing.assert_allclose(gt, load_sequence(src / "my_cup").groundtruth, atol=1e-3)  # 0-based, as VOT
    r = _vot(["evaluate", "--workspace", str(ws), "kcf"], tmp_path)
    assert r.returncode == 0 and "Error" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Evaluation concluded" in r.stdout + r.stderr
    assert list((ws / "results" / "kcf" / "baseline" / "my_cup").glob("my_cup_001*")), "no results written"
    r = _vot(["analysis", "--workspace", str(ws), "kcf", "--name", "a"], tmp_path)
    assert r.returncode == 0 and "Error" not in r.stdout + r.stderr, r.stdout + r.stderr
    report = json.loads((ws / "analysis" / "a.json").read_text())
    assert report["results"]["baseline"]["parameters"]["analyses"][0]["name"] == "accuracy"
    accuracy = report["results"]["baseline"]["results"][0][0][0]
    assert 0.3 < accuracy <= 1.0, accuracy
    # a second workspace in the same place is refused: the toolkit keeps its results there
    rc = cli.main(["vot-workspace", str(src), str(ws)])
    _, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error:") and "already a VOT workspace" in err
