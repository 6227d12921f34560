"""Tests for metartt_lite.data.sequences: OTB / GOT-10k / video readers and the data root."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from metartt_lite.data.sequences import (Sequence, data_root, list_sequences, load_got10k_sequence,
                               load_otb_sequence, load_sequence, load_split, load_video,
                               read_otb_groundtruth, write_otb_groundtruth)
from metartt_lite.core.utils import MetaRTTError


# --------------------------------------------------------------------------- helpers

def _img(w: int = 32, h: int = 24, value: int = 0) -> np.ndarray:
    """A BGR test image with a distinct value per frame."""
    im = np.zeros((h, w, 3), np.uint8)
    im[..., 0] = value % 256
    im[..., 2] = 255 - value % 256
    return im


def make_otb(root: Path, name: str = "Seq", n: int = 4, start: int = 1, gt: str | None = None,
             ext: str = ".png", gt_name: str = "groundtruth_rect.txt", size=(32, 24)) -> Path:
    folder = root / name
    (folder / "img").mkdir(parents=True)
    for k in range(n):
        cv2.imwrite(str(folder / "img" / f"{start + k:04d}{ext}"), _img(*size, value=10 * k))
    if gt is None:
        gt = "".join(f"{2 + k},{3 + k},10,8\n" for k in range(n))
    (folder / gt_name).write_text(gt)
    return folder


def write_gt(tmp_path: Path, text: str, name: str = "gt.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


# --------------------------------------------------------------------------- real data

@pytest.mark.shared
def test_every_shared_sequence_loads(shared_data):
    index = json.loads((shared_data / "sequences.json").read_text())
    assert list_sequences(shared_data) == [s["name"] for s in index["sequences"]]
    for entry in index["sequences"]:
        seq = load_otb_sequence(shared_data / entry["name"])
        assert seq.name == entry["name"]
        assert len(seq) == entry["n_frames"] == len(seq.frame_paths)
        assert seq.frame_paths[0].name == entry["first_frame"]
        assert seq.frame_paths[-1].name == entry["last_frame"]
        expected = np.asarray(entry["first_gt"], dtype=float) - [1, 1, 0, 0]
        np.testing.assert_allclose(seq.init_box, expected, atol=1e-9)
        assert seq.frame_size == tuple(entry["image_size"])
        for i in (0, len(seq) // 2, -1):
            f = seq.frame(i)
            assert f.dtype == np.uint8 and f.shape == (entry["image_size"][1], entry["image_size"][0], 3)
        assert np.isfinite(seq.groundtruth).all()


@pytest.mark.shared
def test_shared_splits(shared_data):
    train = list_sequences(shared_data, split="train")
    val = list_sequences(shared_data, split="val")
    splits = json.loads((shared_data / "splits.json").read_text())
    assert train == splits["train"] and val == splits["val"]      # the file's order, every name found
    assert len(train) >= 14 and len(val) >= 5                     # 24 / 11 since the data grew (2026-12)
    assert not set(train) & set(val)
    seqs = load_split(shared_data, "val")
    assert [s.name for s in seqs] == val
    assert all(isinstance(s, Sequence) and len(s) > 0 for s in seqs)
    assert [s.name for s in load_split(shared_data, "train", names="Dog,Car4")] == ["Dog", "Car4"]
    with pytest.raises(MetaRTTError, match="Crossing.*split 'train'"):
        list_sequences(shared_data, split="train", names=["Crossing"])
    with pytest.raises(MetaRTTError, match="known splits: train, val"):
        list_sequences(shared_data, split="test")
    with pytest.raises(MetaRTTError, match="NoSuchSeq"):
        list_sequences(shared_data, names="Dog,NoSuchSeq")


@pytest.mark.shared
def test_grayscale_jpeg_sequence_is_rgb(shared_data):
    f = load_otb_sequence(shared_data / "Car4").frame(0)
    assert f.shape[2] == 3 and f.dtype == np.uint8


@pytest.mark.shared
def test_data_root_default_is_cwd_relative(shared_data, monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    if not (repo.parent / "shared" / "data").is_dir():
        pytest.skip("data is not at ../shared/data")
    monkeypatch.delenv("METARTT_DATA", raising=False)
    monkeypatch.chdir(repo)
    assert data_root() == (repo.parent / "shared" / "data").resolve()


# --------------------------------------------------------------------------- ground-truth parsing

EXPECTED = np.array([[0.0, 1.0, 10.0, 20.0], [1.5, 2.5, 11.0, 21.0]])  # 0-based


@pytest.mark.parametrize("text", [
    "1,2,10,20\n2.5,3.5,11,21\n",                 # comma
    "1\t2\t10\t20\n2.5\t3.5\t11\t21\n",           # tab (original OTB files, e.g. Dog)
    "1 2 10 20\n2.5 3.5 11 21\n",                 # space
    "1, 2\t10  20\n2.5 ,3.5,\t11 21\n",           # mixed
    "1,2,10,20,\n2.5,3.5,11,21,\n\n\n",           # trailing separators and blank lines
    "\ufeff1,2,10,20\r\n2.5,3.5,11,21\r\n",       # BOM + CRLF
    "1,2,10,20\n2.5,3.5,11,21",                   # no final newline
])
def test_read_groundtruth_separators(tmp_path, text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gt = read_otb_groundtruth(write_gt(tmp_path, text))
    assert gt.dtype == np.float64 and gt.shape == (2, 4)
    np.testing.assert_array_equal(gt, EXPECTED)


def test_read_groundtruth_nan_rows_warn_once(tmp_path):
    p = write_gt(tmp_path, "1,2,10,20\nnan,nan,nan,nan\nNaN,3,4,5\n1,2,3\n\n2.5,3.5,11,21\n")
    with pytest.warns(UserWarning) as rec:
        gt = read_otb_groundtruth(p)
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert str(p) in msg and "4 of 6" in msg
    assert gt.shape == (6, 4)
    np.testing.assert_array_equal(gt[0], EXPECTED[0])
    np.testing.assert_array_equal(gt[5], EXPECTED[1])
    assert np.isnan(gt[1:5]).all()


def test_read_groundtruth_errors(tmp_path):
    with pytest.raises(MetaRTTError, match="line 2 .* 5 values"):
        read_otb_groundtruth(write_gt(tmp_path, "1,2,3,4\n1,2,3,4,5\n"))
    with pytest.raises(MetaRTTError, match="line 1 .*not numbers"):
        read_otb_groundtruth(write_gt(tmp_path, "a,b,c,d\n"))
    with pytest.raises(MetaRTTError, match="does not exist"):
        read_otb_groundtruth(tmp_path / "nope.txt")
    assert read_otb_groundtruth(write_gt(tmp_path, "\n\n")).shape == (0, 4)


def test_write_groundtruth_round_trip(tmp_path):
    boxes = np.array([[0.0, 1.0, 10.0, 20.0], [np.nan] * 4, [291.23, 127.36, 145.96, 132.47]])
    p = write_otb_groundtruth(tmp_path / "out" / "groundtruth_rect.txt", boxes)
    lines = p.read_text().splitlines()
    assert lines[0] == "1,2,10,20" and lines[1] == "NaN,NaN,NaN,NaN"
    assert lines[2] == "292.23,128.36,145.96,132.47"
    with pytest.warns(UserWarning):
        back = read_otb_groundtruth(p)
    np.testing.assert_allclose(back, boxes, equal_nan=True)


# --------------------------------------------------------------------------- OTB folders

def test_otb_frames_starting_at_0300(tmp_path):
    folder = make_otb(tmp_path, "David", n=5, start=300, ext=".jpg")
    seq = load_otb_sequence(folder)
    assert [p.name for p in seq.frame_paths] == [f"{k:04d}.jpg" for k in range(300, 305)]
    np.testing.assert_array_equal(seq.init_box, [1, 2, 10, 8])
    assert seq.frame_size == (32, 24)
    frames = list(seq.frames())
    assert len(frames) == 5 and all(f.shape == (24, 32, 3) and f.dtype == np.uint8 for f in frames)


def test_otb_frame_content_is_rgb(tmp_path):
    seq = load_otb_sequence(make_otb(tmp_path, n=3))
    f = seq.frame(2)  # BGR written as (20, 0, 235) -> RGB (235, 0, 20)
    np.testing.assert_array_equal(f[0, 0], [235, 0, 20])


def test_otb_count_mismatch(tmp_path):
    long_gt = make_otb(tmp_path, "Long", n=3, gt="1,1,5,5\n" * 5)
    with pytest.raises(MetaRTTError, match=r"5 rows.*3 frames"):
        load_otb_sequence(long_gt)
    short = make_otb(tmp_path, "Short", n=5, gt="1,1,5,5\n" * 3)
    with pytest.raises(MetaRTTError, match=r"3 rows.*5 frames"):
        load_otb_sequence(short)
    with pytest.warns(UserWarning, match="first 3 of 5"):
        seq = load_otb_sequence(short, allow_short_gt=True)
    assert len(seq) == 3 and seq.frame_paths[-1].name == "0003.png"


def test_otb_missing_parts(tmp_path):
    folder = make_otb(tmp_path, "Empty", n=0, gt="")
    with pytest.raises(MetaRTTError, match="no .jpg/.png frames"):
        load_otb_sequence(folder)
    (tmp_path / "NoImg").mkdir()
    with pytest.raises(MetaRTTError, match="no img/"):
        load_otb_sequence(tmp_path / "NoImg")
    folder = make_otb(tmp_path, "NoGt", n=2)
    (folder / "groundtruth_rect.txt").unlink()
    with pytest.raises(MetaRTTError, match="no groundtruth_rect.txt"):
        load_otb_sequence(folder)
    alt = make_otb(tmp_path, "Alt", n=2, gt_name="groundtruth.txt")
    assert len(load_otb_sequence(alt)) == 2


def test_otb_nan_first_box(tmp_path):
    folder = make_otb(tmp_path, "NanFirst", n=2, gt="nan,nan,nan,nan\n1,1,5,5\n")
    with pytest.warns(UserWarning):
        seq = load_otb_sequence(folder)
    with pytest.raises(MetaRTTError, match="first ground-truth box of NanFirst.*NaN"):
        seq.init_box


def test_grayscale_rgba_and_16bit_png_become_rgb(tmp_path):
    folder = tmp_path / "Modes"
    (folder / "img").mkdir(parents=True)
    gray = np.full((6, 8), 77, np.uint8)
    bgra = np.zeros((6, 8, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128
    g16 = np.full((6, 8), 65535, np.uint16)
    cv2.imwrite(str(folder / "img" / "0001.png"), gray)
    cv2.imwrite(str(folder / "img" / "0002.png"), bgra)
    cv2.imwrite(str(folder / "img" / "0003.png"), g16)
    cv2.imwrite(str(folder / "img" / "0004.jpg"), gray)
    (folder / "groundtruth_rect.txt").write_text("1,1,3,3\n" * 4)
    seq = load_otb_sequence(folder)
    assert cv2.imread(str(seq.frame_paths[1]), cv2.IMREAD_UNCHANGED).shape == (6, 8, 4)
    frames = [seq.frame(i) for i in range(4)]
    for f in frames:
        assert f.shape == (6, 8, 3) and f.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], 77)
    np.testing.assert_array_equal(frames[1][0, 0], [30, 20, 10])
    np.testing.assert_array_equal(frames[2], 255)
    assert abs(int(frames[3][0, 0, 0]) - 77) <= 2


def test_corrupt_and_missing_frame(tmp_path):
    folder = make_otb(tmp_path, "Basketball", n=5, ext=".jpg")
    (folder / "img" / "0003.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    seq = load_otb_sequence(folder)
    seq.frame(1)
    with pytest.raises(MetaRTTError, match=r"frame 2 of Basketball \(.*0003\.jpg\) cannot be decoded"):
        seq.frame(2)
    with pytest.raises(MetaRTTError, match="frame 2 of Basketball"):
        list(seq.frames())
    (folder / "img" / "0005.jpg").unlink()
    with pytest.raises(MetaRTTError, match=r"frame 4 of Basketball \(.*0005\.jpg\) is missing"):
        seq.frame(4)
    with pytest.raises(IndexError):
        seq.frame(5)


def test_sequence_length_mismatch_rejected(tmp_path):
    with pytest.raises(MetaRTTError, match="2 frames but 3"):
        Sequence("x", [tmp_path / "a.jpg", tmp_path / "b.jpg"], np.zeros((3, 4)))
    with pytest.raises(MetaRTTError, match="shape"):
        Sequence("x", None, np.zeros((3, 5)), video_path=tmp_path / "v.mp4")


# --------------------------------------------------------------------------- GOT-10k

def make_got10k(root: Path, name: str = "GOT-10k_Val_000001", n: int = 4, gt: str | None = None,
                absence: str | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for k in range(n):
        cv2.imwrite(str(folder / f"{k + 1:08d}.jpg"), _img(value=10 * k))
    (folder / "groundtruth.txt").write_text(gt if gt is not None else
                                            "".join(f"{1 + k}.5,{2 + k},10,8\n" for k in range(n)))
    if absence is not None:
        (folder / "absence.label").write_text(absence)
    (folder / "meta_info.ini").write_text("[METAINFO]\n")
    return folder


def test_got10k_sequence(tmp_path):
    folder = make_got10k(tmp_path, absence="0\n1\n0\n0\n",
                         gt="1,2,10,8\n-1,-1,-1,-1\n3,4,0,8\n4,5,10,8\n")
    seq = load_got10k_sequence(folder)
    assert len(seq) == 4 and seq.frame_paths[0].name == "00000001.jpg"
    np.testing.assert_array_equal(seq.groundtruth[0], [0, 1, 10, 8])  # 1-based -> 0-based
    np.testing.assert_array_equal(seq.groundtruth[3], [3, 4, 10, 8])
    assert np.isnan(seq.groundtruth[1]).all() and np.isnan(seq.groundtruth[2]).all()
    assert load_sequence(folder).name == folder.name


def test_got10k_test_split_first_box_only(tmp_path):
    seq = load_got10k_sequence(make_got10k(tmp_path, gt="5,6,10,8\n"))
    assert len(seq) == 4
    np.testing.assert_array_equal(seq.init_box, [4, 5, 10, 8])
    assert np.isnan(seq.groundtruth[1:]).all()


def test_got10k_mismatch(tmp_path):
    with pytest.raises(MetaRTTError, match="2 rows.*4 frames"):
        load_got10k_sequence(make_got10k(tmp_path, gt="1,1,5,5\n1,1,5,5\n"))
    with pytest.raises(MetaRTTError, match="absence.label has 2 rows"):
        load_got10k_sequence(make_got10k(tmp_path, "b", absence="0\n0\n"))


# --------------------------------------------------------------------------- video

def write_video(path: Path, n: int, fourcc: str, size=(64, 48)) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    assert w.isOpened(), f"OpenCV cannot write {fourcc} {path.suffix}"
    for k in range(n):
        f = np.zeros((size[1], size[0], 3), np.uint8)
        f[..., 2] = 200  # red in BGR
        f[8:24, 4 * k:4 * k + 16] = 255
        w.write(f)
    w.release()
    return path


@pytest.mark.parametrize("ext,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_video_round_trip(tmp_path, ext, fourcc):
    path = write_video(tmp_path / f"clip{ext}", 7, fourcc)
    seq = load_video(path, [2, 3, 10, 12])
    assert seq.name == "clip" and seq.frame_paths is None and seq.video_path == path
    assert len(seq) == 7 and seq.frame_size == (64, 48)
    np.testing.assert_array_equal(seq.init_box, [2, 3, 10, 12])
    assert np.isnan(seq.groundtruth[1:]).all()
    frames = list(seq.frames())
    assert len(frames) == 7
    for f in frames:
        assert f.shape == (48, 64, 3) and f.dtype == np.uint8
        assert abs(int(f[40, 60, 0]) - 200) < 20 and int(f[40, 60, 2]) < 30  # RGB, red stays red
    assert seq.frame(6).shape == (48, 64, 3)
    assert len(load_sequence(path, init_box=[2, 3, 10, 12])) == 7


@pytest.mark.parametrize("ext,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_zero_frame_video(tmp_path, ext, fourcc):
    path = tmp_path / f"empty{ext}"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48)).release()
    if not path.exists():
        path.write_bytes(b"")
    with pytest.raises(MetaRTTError, match=r"empty\.\w+ (has no frames|cannot be opened)"):
        load_video(path, [1, 1, 5, 5])


def test_video_errors(tmp_path):
    with pytest.raises(MetaRTTError, match="does not exist"):
        load_video(tmp_path / "nope.mp4", [1, 1, 5, 5])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(MetaRTTError, match="junk.mp4"):
        load_video(junk, [1, 1, 5, 5])
    path = write_video(tmp_path / "clip.avi", 3, "MJPG")
    with pytest.raises(MetaRTTError, match="initial box"):
        load_sequence(path)
    with pytest.raises(MetaRTTError, match="outside"):
        load_video(path, [100, 100, 5, 5])


# --------------------------------------------------------------------------- dispatch and data root

def test_load_sequence_dispatch(tmp_path):
    otb = make_otb(tmp_path, "Otb", n=3)
    assert load_sequence(otb).frame_paths[0].parent.name == "img"
    seq = load_sequence(otb, init_box=[0, 0, 4, 4])
    np.testing.assert_array_equal(seq.init_box, [0, 0, 4, 4])
    plain = tmp_path / "plain"
    plain.mkdir()
    for k in range(3):
        cv2.imwrite(str(plain / f"f{k}.png"), _img())
    with pytest.raises(MetaRTTError, match="initial box"):
        load_sequence(plain)
    assert len(load_sequence(plain, init_box=[1, 1, 5, 5])) == 3
    (tmp_path / "nothing").mkdir()
    with pytest.raises(MetaRTTError, match="neither"):
        load_sequence(tmp_path / "nothing")
    with pytest.raises(MetaRTTError, match="does not exist"):
        load_sequence(tmp_path / "missing")


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("METARTT_DATA", raising=False)
    assert data_root(tmp_path) == tmp_path
    with pytest.raises(MetaRTTError, match="does not exist"):
        data_root(tmp_path / "nope")
    monkeypatch.setenv("METARTT_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.setenv("METARTT_DATA", str(tmp_path / "nope"))
    with pytest.raises(MetaRTTError, match="METARTT_DATA"):
        data_root()
    monkeypatch.delenv("METARTT_DATA")
    (tmp_path / "proj").mkdir()
    monkeypatch.chdir(tmp_path / "proj")
    with pytest.raises(MetaRTTError, match="METARTT_DATA"):
        data_root()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert data_root() == (tmp_path / "shared" / "data").resolve()


def test_list_sequences_without_index(tmp_path):
    make_otb(tmp_path, "B", n=2)
    make_otb(tmp_path, "A", n=2)
    (tmp_path / "not_a_sequence").mkdir()
    (tmp_path / "img_only" / "img").mkdir(parents=True)
    assert list_sequences(tmp_path) == ["A", "B"]
    assert list_sequences(tmp_path, names="B") == ["B"]
    with pytest.raises(MetaRTTError, match=r"splits\.json.*does not exist"):
        list_sequences(tmp_path, split="val")
    with pytest.raises(MetaRTTError, match="unknown sequence.*C"):
        list_sequences(tmp_path, names=["A", "C"])
    seqs = load_split(tmp_path)
    assert [s.name for s in seqs] == ["A", "B"] and all(len(s) == 2 for s in seqs)
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["A"], "val": ["B", "Z"]}))
    assert list_sequences(tmp_path, split="train") == ["A"]
    with pytest.raises(MetaRTTError, match="not in .*Z"):
        list_sequences(tmp_path, split="val")
    with pytest.raises(MetaRTTError, match="known splits: train, val"):
        list_sequences(tmp_path, split="test")


def test_list_sequences_with_index(tmp_path):
    make_otb(tmp_path, "A", n=2)
    make_otb(tmp_path, "B", n=2)
    (tmp_path / "sequences.json").write_text(json.dumps({"sequences": [{"name": "B"}, {"name": "A"}]}))
    assert list_sequences(tmp_path) == ["B", "A"]
    (tmp_path / "sequences.json").write_text(json.dumps({"sequences": [{"name": "Gone"}]}))
    with pytest.raises(MetaRTTError, match="Gone"):
        load_split(tmp_path)
    (tmp_path / "sequences.json").write_text("{broken")
    with pytest.raises(MetaRTTError, match="sequences.json"):
        list_sequences(tmp_path)


def test_prefetch_yields_the_same_frames_in_order_and_reraises():
    import threading
    from metartt_lite.data.sequences import prefetch
    frames = [np.full((4, 5, 3), i, np.uint8) for i in range(23)]
    got = list(prefetch(iter(frames), depth=3))
    assert len(got) == 23 and all(g is f for g, f in zip(got, frames))

    def broken():
        yield frames[0]
        yield frames[1]
        raise MetaRTTError("frame 2 cannot be decoded")
    it = prefetch(broken())
    assert next(it) is frames[0] and next(it) is frames[1]
    with pytest.raises(MetaRTTError, match="frame 2"):
        next(it)

    def endless():
        while True:
            yield frames[0]
    it = prefetch(endless(), depth=2)
    next(it)
    it.close()  # stops the producer thread
    assert not any(t.name == "metartt-prefetch" and t.is_alive() for t in threading.enumerate())
