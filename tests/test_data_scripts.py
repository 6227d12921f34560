"""Offline tests of data_scripts/ on tiny generated fixtures (never the network)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from metartt_lite.data.sequences import list_sequences, load_got10k_sequence, load_otb_sequence, read_otb_groundtruth
from metartt_lite.core.utils import MetaRTTError

SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"data_scripts_{name}", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def dl():
    return _load("download_otb")


@pytest.fixture(scope="module")
def conv():
    return _load("convert_got10k")


@pytest.fixture(scope="module")
def mk():
    return _load("make_index")


def _jpeg(k: int, size=(320, 240)) -> bytes:
    im = np.full((size[1], size[0], 3), 20 * k, np.uint8)
    ok, buf = cv2.imencode(".jpg", im)
    assert ok
    return buf.tobytes()


def make_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def otb_members(folder: str, frames: range, gts: dict[str, str]) -> dict[str, bytes | str]:
    m: dict[str, bytes | str] = {f"{folder}/img/{k:04d}.jpg": _jpeg(k) for k in frames}
    m.update({f"{folder}/{n}": t for n, t in gts.items()})
    return m


# --------------------------------------------------------------------------- download_otb

def test_download_otb_file_url(dl, tmp_path):
    zips = tmp_path / "zips"
    make_zip(zips / "Basketball.zip", {**otb_members("Basketball", range(1, 4),
                                                     {"groundtruth_rect.txt": "198\t214\t34\t81\n199\t215\t34\t81\n"
                                                                              "200\t216\t34\t81\n"}),
                                       "__MACOSX/Basketball/img/._0001.jpg": b"junk",
                                       "Basketball/img/.DS_Store": b"junk"})
    out = tmp_path / "out"
    rc = dl.main(["--names", "Basketball", "--out", str(out), "--url-template", zips.as_uri() + "/{name}.zip"])
    assert rc == 0
    assert sorted(p.name for p in (out / "Basketball" / "img").iterdir()) == ["0001.jpg", "0002.jpg", "0003.jpg"]
    assert (out / "Basketball" / "groundtruth_rect.txt").read_text().splitlines()[0] == "198,214,34,81"
    seq = load_otb_sequence(out / "Basketball")
    np.testing.assert_array_equal(seq.init_box, [197, 213, 34, 81])
    index = json.loads((out / "sequences.json").read_text())
    assert index["sequences"] == [{"name": "Basketball", "n_frames": 3, "first_frame": "0001.jpg",
                                   "last_frame": "0003.jpg", "image_size": [320, 240],
                                   "first_gt": [198.0, 214.0, 34.0, 81.0]}]
    assert not (out / ".zips").exists() and not list(out.glob(".unpack*"))
    assert list_sequences(out) == ["Basketball"]


def test_download_otb_multi_target_local_path(dl, tmp_path):
    zips = tmp_path / "zips"
    make_zip(zips / "Jogging.zip", otb_members("OTB100/Jogging", range(1, 4), {
        "groundtruth_rect.1.txt": "111 98 25 101\n112 98 25 101\n113 98 25 101\n",
        "groundtruth_rect.2.txt": "180,79,37,114\n181,79,37,114\n182,79,37,114\n"}))
    out = tmp_path / "out"
    made = dl.download_otb(["Jogging-2"], out, str(zips / "{name}.zip"))
    assert made == ["Jogging-2"] and not (out / "Jogging-1").exists()
    made = dl.download_otb(["Jogging"], out, str(zips / "{name}.zip"), keep_zips=True)
    assert made == ["Jogging-1"]  # Jogging-2 already there
    assert (out / ".zips" / "Jogging.zip").is_file()
    j1, j2 = load_otb_sequence(out / "Jogging-1"), load_otb_sequence(out / "Jogging-2")
    np.testing.assert_array_equal(j1.init_box, [110, 97, 25, 101])
    np.testing.assert_array_equal(j2.init_box, [179, 78, 37, 114])
    assert len(j1) == len(j2) == 3
    assert list_sequences(out) == ["Jogging-1", "Jogging-2"]
    with pytest.raises(MetaRTTError, match="target.*3"):
        dl.unpack_otb_zip(zips / "Jogging.zip", tmp_path / "x", "Jogging", ["3"])


def test_unpack_frame_range_and_mismatch(dl, tmp_path, monkeypatch):
    monkeypatch.setitem(dl.OTB_FRAME_RANGES, "Tiny", (3, 5))
    z = make_zip(tmp_path / "Tiny.zip", otb_members("Tiny", range(1, 8), {"groundtruth_rect.txt": "1,1,5,5\n" * 3}))
    assert dl.unpack_otb_zip(z, tmp_path / "out") == ["Tiny"]
    assert [p.name for p in load_otb_sequence(tmp_path / "out" / "Tiny").frame_paths] == \
        ["0003.jpg", "0004.jpg", "0005.jpg"]
    z = make_zip(tmp_path / "Long.zip", otb_members("Long", range(1, 3), {"groundtruth_rect.txt": "1,1,5,5\n" * 3}))
    with pytest.raises(MetaRTTError, match="3 rows but only 2 frames"):
        dl.unpack_otb_zip(z, tmp_path / "out")
    assert not (tmp_path / "out" / "Long").exists()


def test_unpack_bad_zips(dl, tmp_path):
    z = make_zip(tmp_path / "evil.zip", {"../evil.txt": "x", "S/img/0001.jpg": _jpeg(1),
                                         "S/groundtruth_rect.txt": "1,1,2,2\n"})
    with pytest.raises(MetaRTTError, match="outside"):
        dl.unpack_otb_zip(z, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    z = make_zip(tmp_path / "noimg.zip", {"S/groundtruth_rect.txt": "1,1,2,2\n"})
    with pytest.raises(MetaRTTError, match="found 0"):
        dl.unpack_otb_zip(z, tmp_path / "out")
    (tmp_path / "notzip.zip").write_bytes(b"hello")
    with pytest.raises(MetaRTTError, match="not a zip"):
        dl.unpack_otb_zip(tmp_path / "notzip.zip", tmp_path / "out")


def test_download_errors_offline(dl, tmp_path, capsys):
    rc = dl.main(["--names", "Nope", "--out", str(tmp_path / "out"),
                  "--url-template", str(tmp_path / "{name}.zip")])
    assert rc == 2 and "Nope.zip does not exist" in capsys.readouterr().err
    with pytest.raises(MetaRTTError, match="cannot download"):
        dl.fetch((tmp_path / "missing.zip").as_uri(), tmp_path / "dst.zip")
    assert dl.split_name("Jogging-1") == ("Jogging", "1")
    assert dl.split_name("Human4-2") == ("Human4", "2")
    assert dl.split_name("UAV-1") == ("UAV-1", None)


# --------------------------------------------------------------------------- convert_got10k

def make_got10k_split(root: Path) -> Path:
    src = root / "val"
    seqs = {"GOT-10k_Val_000002": ("10,20,30,40\n11,21,30,40\n12,22,30,40\n", "0\n1\n0\n"),
            "GOT-10k_Val_000001": ("1.5,2.5,8,9\n2.5,3.5,8,9\n", None)}
    for name, (gt, absence) in seqs.items():
        d = src / name
        d.mkdir(parents=True)
        for k in range(len(gt.splitlines())):
            (d / f"{k + 1:08d}.jpg").write_bytes(_jpeg(k))
        (d / "groundtruth.txt").write_text(gt)
        if absence:
            (d / "absence.label").write_text(absence)
    (src / "list.txt").write_text("GOT-10k_Val_000002\nGOT-10k_Val_000001\n")
    return src


@pytest.mark.filterwarnings("ignore:.*ground-truth rows are missing")
def test_convert_got10k(conv, tmp_path):
    src = make_got10k_split(tmp_path)
    dst = tmp_path / "otb"
    assert conv.main([str(src), str(dst), "--limit", "1"]) == 0
    assert list_sequences(dst) == ["GOT-10k_Val_000002"]
    out = dst / "GOT-10k_Val_000002"
    assert all(p.is_symlink() for p in (out / "img").iterdir())
    assert (out / "groundtruth_rect.txt").read_text().splitlines() == \
        ["10,20,30,40", "NaN,NaN,NaN,NaN", "12,22,30,40"]  # 1-based in and out: numbers unchanged
    with pytest.warns(UserWarning, match="1 of 3"):
        a = load_otb_sequence(out)
    b = load_got10k_sequence(src / "GOT-10k_Val_000002")
    np.testing.assert_array_equal(a.groundtruth, b.groundtruth)
    np.testing.assert_array_equal(a.init_box, [9, 19, 30, 40])
    np.testing.assert_array_equal(a.frame(2), b.frame(2))

    assert conv.main([str(src), str(dst), "--copy"]) == 0
    assert list_sequences(dst) == ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    assert not any(p.is_symlink() for p in (dst / "GOT-10k_Val_000001" / "img").iterdir())
    assert all(p.is_symlink() for p in (out / "img").iterdir())  # kept, not --force
    np.testing.assert_array_equal(read_otb_groundtruth(dst / "GOT-10k_Val_000001" / "groundtruth_rect.txt"),
                                  [[0.5, 1.5, 8, 9], [1.5, 2.5, 8, 9]])
    assert conv.main([str(src), str(dst), "--copy", "--force"]) == 0
    assert not any(p.is_symlink() for p in (out / "img").iterdir())
    assert not list(dst.glob(".*partial"))


def test_convert_got10k_errors(conv, tmp_path, capsys):
    assert conv.main([str(tmp_path / "none"), str(tmp_path / "dst")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert conv.main([str(tmp_path / "empty"), str(tmp_path / "dst")]) == 2
    assert "no GOT-10k sequence folders" in capsys.readouterr().err


# --------------------------------------------------------------------------- make_index

def _otb(root: Path, name: str, n: int = 2) -> None:
    (root / name / "img").mkdir(parents=True)
    for k in range(n):
        (root / name / "img" / f"{k + 1:04d}.jpg").write_bytes(_jpeg(k))
    (root / name / "groundtruth_rect.txt").write_text("3,4,5,6\n" * n)


def test_make_index_module(mk, tmp_path):
    _otb(tmp_path, "B", 3)
    _otb(tmp_path, "A")
    (tmp_path / "junk").mkdir()
    index = mk.make_index(tmp_path, val=["B"])
    assert index["n_sequences"] == 2 and index["total_frames"] == 5
    assert [s["name"] for s in index["sequences"]] == ["A", "B"]
    assert index["sequences"][1]["first_gt"] == [3.0, 4.0, 5.0, 6.0]
    assert json.loads((tmp_path / "splits.json").read_text()) == {"train": ["A"], "val": ["B"]}
    assert list_sequences(tmp_path, split="val") == ["B"]
    with pytest.raises(MetaRTTError, match="unknown sequence.*Z"):
        mk.make_index(tmp_path, val=["Z"])
    with pytest.raises(MetaRTTError, match="no OTB sequence folders"):
        mk.make_index(tmp_path / "junk")


def test_make_index_script_subprocess(mk, tmp_path, capsys):
    _otb(tmp_path, "Girl")
    env = {**os.environ, "PYTHONPATH": ""}
    r = subprocess.run([sys.executable, str(SCRIPTS / "make_index.py"), str(tmp_path), "--val", "Girl"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "indexed 1 sequences" in r.stdout
    assert json.loads((tmp_path / "splits.json").read_text())["val"] == ["Girl"]
    assert mk.main([str(tmp_path), "--val", "Nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Nope" in err
