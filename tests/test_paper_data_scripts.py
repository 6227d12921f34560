"""Offline tests of the paper-scale converters (data_scripts/convert_imagenet_vid.py, convert_lasot.py) on
tiny fixtures written here in each dataset's own layout. Oracles: boxes computed by hand from the fixture's
numbers, and each converted frame recognised by its grey level (frame k is filled with 10 * k)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from metartt_lite.data.sequences import list_sequences, load_otb_sequence, load_split
from metartt_lite.core.utils import MetaRTTError

from test_data_scripts import _load  # the one loader of data_scripts/*.py modules

SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"
pytestmark = pytest.mark.filterwarnings("ignore:.*ground-truth rows are missing or NaN")


@pytest.fixture(scope="module")
def vid():
    return _load("convert_imagenet_vid")


@pytest.fixture(scope="module")
def lasot():
    return _load("convert_lasot")


def _frame(path: Path, k: int, size=(64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((size[1], size[0], 3), 10 * k, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])


def _levels(seq) -> list[int]:
    return [int(round(seq.frame(i).mean() / 10)) for i in range(len(seq))]


# ----------------------------------------------------------------------------------------- ImageNet VID

def _vid_xml(objects: list[tuple[int, str, tuple[int, int, int, int]]]) -> str:
    objs = "".join(f"<object><trackid>{t}</trackid><name>{n}</name><bndbox><xmax>{b[2]}</xmax><xmin>{b[0]}</xmin>"
                   f"<ymax>{b[3]}</ymax><ymin>{b[1]}</ymin></bndbox><occluded>0</occluded><generated>0</generated>"
                   f"</object>" for t, n, b in objects)
    return (f"<annotation><folder>x</folder><filename>y</filename><size><width>64</width><height>48</height>"
            f"</size>{objs}</annotation>")


@pytest.fixture()
def vid_root(tmp_path):
    """One train snippet (5 frames): track 0 in every frame, moving 2 px right per frame; track 1 in frames
    1, 2, 4 (not annotated in 3); track 2 in frame 0 only. One val snippet with one track."""
    root = tmp_path / "ILSVRC2015"
    snip = "ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"
    for f in range(5):
        _frame(root / "Data/VID/train" / snip / f"{f:06d}.JPEG", f)
        objs = [(0, "n02691156", (10 + 2 * f, 5, 29 + 2 * f, 24))]
        if f in (1, 2, 4):
            objs.append((1, "n02084071", (0, 0, 9, 19)))
        if f == 0:
            objs.append((2, "n02084071", (40, 30, 50, 40)))
        p = root / "Annotations/VID/train" / snip / f"{f:06d}.xml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(_vid_xml(objs))
    for f in range(3):
        _frame(root / "Data/VID/val/ILSVRC2015_val_00000000" / f"{f:06d}.JPEG", 20 + f)
        p = root / "Annotations/VID/val/ILSVRC2015_val_00000000" / f"{f:06d}.xml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(_vid_xml([(3, "n01503061", (1, 2, 3, 4))]))
    return root


def test_vid_one_sequence_per_track(vid, vid_root, tmp_path):
    dst = tmp_path / "out"
    assert vid.main([str(vid_root), str(dst)]) == 0
    names = list_sequences(dst)
    assert names == ["ILSVRC2015_train_00000000_0", "ILSVRC2015_train_00000000_1"]   # track 2: one frame only
    s0 = load_otb_sequence(dst / names[0])
    # inclusive 0-based bndbox (10, 5)-(29, 24) in frame 0 -> 0-based x,y,w,h = 10,5,20,20
    np.testing.assert_array_equal(s0.groundtruth, [[10 + 2 * f, 5, 20, 20] for f in range(5)])
    assert (dst / names[0] / "groundtruth_rect.txt").read_text().splitlines()[0] == "11,6,20,20"  # 1-based
    assert _levels(s0) == [0, 1, 2, 3, 4]
    s1 = load_otb_sequence(dst / names[1])     # frames 1..4, not annotated in frame 3 -> NaN row
    assert len(s1) == 4 and _levels(s1) == [1, 2, 3, 4]
    np.testing.assert_array_equal(s1.groundtruth[[0, 1, 3]], [[0, 0, 10, 20]] * 3)
    assert np.all(np.isnan(s1.groundtruth[2]))
    index = json.loads((dst / "sequences.json").read_text())
    assert index["n_sequences"] == 2 and index["total_frames"] == 9
    assert [s.name for s in load_split(dst)] == names          # metartt_lite reads the result as it is
    # --min-frames 1 keeps the one-frame track; --subset val reads the flat val layout
    assert vid.main([str(vid_root), str(tmp_path / "all"), "--min-frames", "1"]) == 0
    assert "ILSVRC2015_train_00000000_2" in list_sequences(tmp_path / "all")
    assert vid.main([str(vid_root), str(tmp_path / "val"), "--subset", "val"]) == 0
    sv = load_otb_sequence(tmp_path / "val" / "ILSVRC2015_val_00000000_3")
    assert _levels(sv) == [20, 21, 22]
    np.testing.assert_array_equal(sv.groundtruth[0], [1, 2, 3, 3])


def test_vid_existing_sequence_skipped_unless_force(vid, vid_root, tmp_path, capsys):
    dst = tmp_path / "out"
    assert vid.convert_imagenet_vid(vid_root, dst) == ["ILSVRC2015_train_00000000_0", "ILSVRC2015_train_00000000_1"]
    assert vid.convert_imagenet_vid(vid_root, dst) == []
    assert "use --force" in capsys.readouterr().out
    assert len(vid.convert_imagenet_vid(vid_root, dst, force=True)) == 2
    assert not list(dst.glob(".*.partial"))


def test_vid_bad_inputs(vid, vid_root, tmp_path, capsys):
    assert vid.main([str(tmp_path / "nope"), str(tmp_path / "o")]) == 2
    assert "Annotations/VID/train" in capsys.readouterr().err
    bad = vid_root / "Annotations/VID/train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000/000002.xml"
    bad.write_text("<annotation><object><name>x</name></object>")
    assert vid.main([str(vid_root), str(tmp_path / "o")]) == 2
    assert "000002.xml is not valid XML" in capsys.readouterr().err
    bad.write_text("<annotation><object><name>x</name><bndbox><xmin>1</xmin></bndbox></object></annotation>")
    assert vid.main([str(vid_root), str(tmp_path / "o")]) == 2
    assert "000002.xml: an <object> has no <trackid>" in capsys.readouterr().err
    bad.write_text(_vid_xml([(0, "n", (10, 5, 29, 24))]))
    (vid_root / "Data/VID/train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000/000003.JPEG").unlink()
    with pytest.raises(MetaRTTError, match="000003.jpg is missing"):
        vid.convert_imagenet_vid(vid_root, tmp_path / "o2")
    assert not list((tmp_path / "o2").glob("ILSVRC*"))


# ------------------------------------------------------------------------------------------------ LaSOT

def _lasot_seq(root: Path, name: str, n: int, level0: int, occl=None, oov=None, boxes=None) -> None:
    folder = root / name.rsplit("-", 1)[0] / name
    for i in range(n):
        _frame(folder / "img" / f"{i + 1:08d}.jpg", level0 + i)
    boxes = boxes or [(5 + i, 6, 20, 10) for i in range(n)]
    (folder / "groundtruth.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in boxes))
    (folder / "full_occlusion.txt").write_text(",".join(map(str, occl or [0] * n)))
    (folder / "out_of_view.txt").write_text(",".join(map(str, oov or [0] * n)))
    (folder / "nlp.txt").write_text("a thing")


@pytest.fixture()
def lasot_root(tmp_path):
    root = tmp_path / "LaSOT"
    _lasot_seq(root, "airplane-1", 5, 0, occl=[0, 0, 1, 0, 0], oov=[0, 0, 0, 0, 1])
    _lasot_seq(root, "airplane-10", 3, 10)
    _lasot_seq(root, "airplane-2", 3, 15, boxes=[(1, 1, 5, 5), (0, 0, 0, 0), (2, 2, 5, 5)])
    _lasot_seq(root, "bird-3", 2, 20)
    (root / "testing_set.txt").write_text("airplane-2\nbird-3\n")
    return root


def test_lasot_converts_with_absent_frames_as_nan(lasot, lasot_root, tmp_path):
    dst = tmp_path / "out"
    assert lasot.main([str(lasot_root), str(dst), "--test-list", str(lasot_root / "testing_set.txt")]) == 0
    assert list_sequences(dst) == ["airplane-1", "airplane-10", "airplane-2", "bird-3"]
    s = load_otb_sequence(dst / "airplane-1")
    assert _levels(s) == [0, 1, 2, 3, 4]
    # 1-based 5+i,6,20,10 in the file -> 0-based 4+i,5,20,10; frame 3 fully occluded, frame 5 out of view
    np.testing.assert_array_equal(s.groundtruth[[0, 1, 3]], [[4, 5, 20, 10], [5, 5, 20, 10], [7, 5, 20, 10]])
    assert np.all(np.isnan(s.groundtruth[[2, 4]]))
    s2 = load_otb_sequence(dst / "airplane-2")   # a 0,0,0,0 box (no area) -> NaN
    assert np.all(np.isnan(s2.groundtruth[1])) and _levels(s2) == [15, 16, 17]
    assert json.loads((dst / "splits.json").read_text()) == {"train": ["airplane-1", "airplane-10"],
                                                            "val": ["airplane-2", "bird-3"]}
    assert [q.name for q in load_split(dst, "val")] == ["airplane-2", "bird-3"]


def test_lasot_options(lasot, lasot_root, tmp_path):
    keep = tmp_path / "keep"
    assert lasot.convert_lasot(lasot_root, keep, classes=["airplane"], limit=1, keep_absent=True) == ["airplane-1"]
    np.testing.assert_array_equal(load_otb_sequence(keep / "airplane-1").groundtruth[2], [6, 5, 20, 10])
    only = tmp_path / "only"
    assert lasot.convert_lasot(lasot_root, only, test_list=lasot_root / "testing_set.txt",
                               only_test=True) == ["airplane-2", "bird-3"]
    assert not (only / "airplane-1").exists()


def test_lasot_bad_inputs(lasot, lasot_root, tmp_path, capsys):
    assert lasot.main([str(lasot_root), str(tmp_path / "o"), "--classes", "cat"]) == 2
    assert "no class folder(s) cat" in capsys.readouterr().err
    assert lasot.main([str(lasot_root), str(tmp_path / "o"), "--only-test"]) == 2
    assert "--only-test needs --test-list" in capsys.readouterr().err
    (lasot_root / "bird" / "bird-3" / "out_of_view.txt").write_text("0,0,0")
    assert lasot.main([str(lasot_root), str(tmp_path / "o"), "--classes", "bird"]) == 2
    assert "out_of_view.txt has 3 flags but the sequence has 2 frames" in capsys.readouterr().err
    (lasot_root / "bird" / "bird-3" / "out_of_view.txt").write_text("0,0")
    (lasot_root / "bird" / "bird-3" / "img" / "00000002.jpg").unlink()
    assert lasot.main([str(lasot_root), str(tmp_path / "o"), "--classes", "bird"]) == 2
    assert "groundtruth.txt has 2 rows but img/ has 1 frames" in capsys.readouterr().err
    assert not (tmp_path / "o" / "bird-3").exists()


# ------------------------------------------------------------------------- the recipe, at toy size, on CPU

@pytest.mark.slow
def test_converted_vid_meta_trains_under_torchrun(vid, tmp_path):
    """docs/paper_scale.md at toy size: sample videos written in ImageNet-VID's layout → convert → index →
    meta-train with ``torchrun --nproc_per_node=2`` (Gloo on CPU). The two-rank run sees the same episodes
    as a one-process run: equal meta-losses step by step (only the all-reduce's summation order differs)."""
    import os
    import subprocess
    import sys

    from metartt_lite.data.samples import make_sample
    mk = _load("make_index")
    root = tmp_path / "ILSVRC2015"
    for k, preset in enumerate(("translation", "scale", "occlusion", "translation")):
        v = make_sample(preset, seed=k, n_frames=10)
        snip = f"ILSVRC2015_VID_train_0000/ILSVRC2015_train_0000{k}000"
        for f, (fr, b) in enumerate(zip(v.frames, v.groundtruth)):
            p = root / "Data/VID/train" / snip / f"{f:06d}.JPEG"
            p.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(p), cv2.cvtColor(fr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            x0, y0 = int(round(b[0])), int(round(b[1]))
            x1, y1 = int(round(b[0] + b[2])) - 1, int(round(b[1] + b[3])) - 1
            a = root / "Annotations/VID/train" / snip / f"{f:06d}.xml"
            a.parent.mkdir(parents=True, exist_ok=True)
            a.write_text(_vid_xml([(0, "n02691156", (x0, y0, x1, y1))]))
    data = tmp_path / "vid_otb"
    assert len(vid.convert_imagenet_vid(root, data)) == 4
    mk.make_index(data, val=["ILSVRC2015_train_00003000_0"])
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), METARTT_DATA=str(data), METARTT_CACHE=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1")
    common = ["meta-train", "--device", "cpu", "--split", "train", "--episodes", "4", "--meta-batch", "2",
              "--frame-step", "1"]
    runs = {"one": [sys.executable, "-m", "metartt_lite", *common, "--out", str(tmp_path / "one")],
            "two": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    "-m", "metartt_lite", *common, "--out", str(tmp_path / "two")]}
    curves = {}
    for name, cmd in runs.items():
        r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        m = json.loads((tmp_path / name / "meta.json").read_text())
        assert m["world_size"] == (1 if name == "one" else 2) and m["steps_run"] == 2
        curves[name] = [c["meta_loss"] for c in m["meta_loss_curve"]]
    assert len(curves["one"]) == 2
    np.testing.assert_allclose(curves["two"], curves["one"], rtol=1e-4)
