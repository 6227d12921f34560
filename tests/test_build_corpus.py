"""Offline tests of data_scripts/build_corpus.py on tiny generated clones (no network, no ../shared)."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from metartt_lite.data.sequences import list_sequences, load_otb_sequence
from metartt_lite.core.utils import MetaRTTError
from test_data_scripts import _load  # the one loader of data_scripts/*.py modules

pytestmark = pytest.mark.filterwarnings("ignore:.*ground-truth rows are missing")  # VOT_beta's NaN row
C_A = "a" * 40  # commit pinned for the plain-folder repository (not checkable)


@pytest.fixture(scope="module")
def bc():
    return _load("build_corpus")


@pytest.fixture(autouse=True)
def _no_shared(bc, monkeypatch):
    """Never fall back on ../shared/data: each test names its reserved list and existing data."""
    monkeypatch.setattr(bc, "_shared_default", lambda *parts: None)


def _jpeg(seed: int) -> bytes:
    im = np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", im)
    assert ok
    return buf.tobytes()


def _frames(folder: Path, names: list[str], seed: int) -> list[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    data = [_jpeg(seed * 100 + i) for i in range(len(names))]
    for n, b in zip(names, data):
        (folder / n).write_bytes(b)
    return data


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def _entry(name, repo, commit, images, gt, n_frames, n_gt, first_frame, first_gt, fmt="xywh", **kw):
    return {"name": name, "dataset": "TEST", "repo": repo, "commit": commit, "images": images, "groundtruth": gt,
            "n_frames": n_frames, "n_gt_lines": n_gt, "gt_format": fmt, "first_gt": first_gt,
            "first_frame": f"{images}/{first_frame}", "alternates": [], **kw}


@pytest.fixture
def world(tmp_path):
    """Clones (a plain folder and a git repo whose HEAD is past the pinned commit), a manifest, a reserved
    list and existing data. Videos: OTB_Alpha, VOT_beta (built); OTB_Gamma (reserved frame), UAV123_10fps_delta_2
    (reserved name 'delta'), VOT_eps (reserved name 'eps' only after the vot_ prefix), OTB_Zeta (existing by
    name), OTB_Eta (existing by frame bytes)."""
    clones, existing = tmp_path / "clones", tmp_path / "existing"
    plain = clones / "own+plain"
    f5 = [f"{k:04d}.jpg" for k in range(1, 6)]
    _frames(plain / "seqs/Alpha/img", f5, 1)
    (plain / "seqs/Alpha/groundtruth_rect.txt").write_text("".join(f"{10 + k}\t20\t8\t6\n" for k in range(5)))
    (plain / "LICENSE").write_text("MIT License\n\nCopyright ...\n")
    gamma = _frames(plain / "seqs/Gamma/img", f5, 3)
    (plain / "seqs/Gamma/groundtruth_rect.txt").write_text("1,1,4,4\n" * 5)
    _frames(plain / "seqs/delta/img", f5, 4)
    (plain / "seqs/delta/groundtruth_rect.txt").write_text("1,1,4,4\n" * 5)
    _frames(plain / "seqs/eps/img", f5, 5)
    (plain / "seqs/eps/groundtruth_rect.txt").write_text("1,1,4,4\n" * 5)
    _frames(plain / "seqs/Zeta/img", f5, 6)
    (plain / "seqs/Zeta/groundtruth_rect.txt").write_text("1,1,4,4\n" * 5)
    eta = _frames(plain / "seqs/Eta/img", f5, 7)
    (plain / "seqs/Eta/groundtruth_rect.txt").write_text("1,1,4,4\n" * 5)

    # VOT_beta: a git repo; 00000000.jpg is an extra frame (frame_offset 1); 2 gt lines before the first frame
    repo = clones / "own+gitrepo"
    vot = repo / "vot" / "beta"
    _frames(vot, [f"{k:08d}.jpg" for k in range(0, 6)], 2)
    polys = ["0,0,1,0,1,1,0,1", "0,0,1,0,1,1,0,1",
             "10.5,30,20.5,30,20.5,14,10.5,14", "12,15,22,14,23,28,11,29",
             "NaN,NaN,NaN,NaN,NaN,NaN,NaN,NaN", "5,6,15,6,15,16,5,16", "1,1,2,1,2,2,1,2"]
    (vot / "groundtruth.txt").write_text("\n".join(polys) + "\n")
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "pinned")
        c_b = _git(repo, "rev-parse", "HEAD")
        (vot / "groundtruth.txt").write_text("changed after the pinned commit\n")
        _git(repo, "commit", "-qam", "later")
    else:  # pragma: no cover - git is in the project's environment
        c_b = "b" * 40

    man = {"entries": [
        _entry("OTB_Alpha", "own/plain", C_A, "seqs/Alpha/img", "seqs/Alpha/groundtruth_rect.txt", 5, 5,
               "0001.jpg", "10,20,8,6", licence_note="test licence"),
        _entry("VOT_beta", "own/gitrepo", c_b, "vot/beta", "vot/beta/groundtruth.txt", 6, 7, "00000001.jpg",
               polys[0], "polygon8", frame_offset=1, gt_line_offset=2, n_usable=4),
        _entry("OTB_Gamma", "own/plain", C_A, "seqs/Gamma/img", "seqs/Gamma/groundtruth_rect.txt", 5, 5,
               "0001.jpg", "1,1,4,4"),
        _entry("UAV123_10fps_delta_2", "own/plain", C_A, "seqs/delta/img", "seqs/delta/groundtruth_rect.txt", 5, 5,
               "0001.jpg", "1,1,4,4"),
        _entry("VOT_eps", "own/plain", C_A, "seqs/eps/img", "seqs/eps/groundtruth_rect.txt", 5, 5,
               "0001.jpg", "1,1,4,4"),
        _entry("OTB_Zeta", "own/plain", C_A, "seqs/Zeta/img", "seqs/Zeta/groundtruth_rect.txt", 5, 5,
               "0001.jpg", "1,1,4,4"),
        _entry("OTB_Eta", "own/plain", C_A, "seqs/Eta/img", "seqs/Eta/groundtruth_rect.txt", 5, 5,
               "0001.jpg", "1,1,4,4"),
    ]}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(man))

    other_sha1 = [hashlib.sha1(_jpeg(900 + i)).hexdigest() for i in range(3)]
    reserved = tmp_path / "RESERVED.json"
    reserved.write_text(json.dumps({
        "name_rule": "base name = lowercased, no dataset prefix, no trailing _<digits>",
        "base_name_sha256": [hashlib.sha256(b"delta").hexdigest(), hashlib.sha256(b"eps").hexdigest(),
                             hashlib.sha256(b"unrelated").hexdigest()],
        "frame_file_sha1": other_sha1 + [hashlib.sha1(gamma[2]).hexdigest()]}))

    # existing data: 'Zeta' (a name match) and 'Other' whose frames are Eta's bytes
    for name, frames in (("Zeta", [_jpeg(800 + i) for i in range(2)]), ("Other", eta[:2])):
        (existing / name / "img").mkdir(parents=True)
        for i, b in enumerate(frames):
            (existing / name / "img" / f"{i + 1:04d}.jpg").write_bytes(b)
        (existing / name / "groundtruth_rect.txt").write_text("1,1,4,4\n" * len(frames))
    (existing / "sequences.json").write_text(json.dumps({"sequences": [{"name": "Zeta"}, {"name": "Other"}]}))
    return {"clones": clones, "manifest": manifest, "reserved": reserved, "existing": existing,
            "out": tmp_path / "out", "git": shutil.which("git") is not None}


def _build(bc, w, **kw):
    args = dict(manifest=w["manifest"], reserved=w["reserved"], existing=w["existing"], log=lambda *a: None)
    args.update(kw)
    return bc.build_corpus(w["out"], w["clones"], **args)


def test_base_name_rule(bc):
    assert bc.base_name("UAV123_10fps_car7_2") == "car7"
    assert bc.base_name("OTB_Jogging-1") == "jogging-1"
    assert bc.base_name("vot2015_bag") == "bag" and bc.base_name("DTB70_Animal1") == "animal1"
    assert bc.candidate_base_names("VOT_ball", "vot15_ball2") == {"vot_ball", "ball", "vot15_ball2", "ball2"}


def test_build_refusals_and_resume(bc, world):
    w = world
    res = _build(bc, w)
    assert sorted(res["built"]) == ["OTB_Alpha", "VOT_beta"] and not res["failed"]
    r = res["refused"]
    assert set(r) == {"OTB_Gamma", "UAV123_10fps_delta_2", "VOT_eps", "OTB_Zeta", "OTB_Eta"}
    assert r["OTB_Gamma"].startswith("reserved: 1 of its 5 frame files have a SHA-1")
    assert r["UAV123_10fps_delta_2"].startswith("reserved: base name 'delta'")
    assert r["VOT_eps"].startswith("reserved: base name 'eps'")
    assert r["OTB_Zeta"].startswith("already present: base name 'zeta' = existing Zeta")
    assert r["OTB_Eta"].startswith("already present: 2 of its frame files are byte-identical to frames of Other")
    out = w["out"]
    assert sorted(p.name for p in out.iterdir()) == ["OTB_Alpha", "VOT_beta", "sequences.json"]  # no temp left

    # normal build: the source's frames byte for byte, tab-separated gt rewritten with commas, 1-based kept
    a = out / "OTB_Alpha"
    assert (a / "groundtruth_rect.txt").read_text().splitlines() == [f"{10 + k},20,8,6" for k in range(5)]
    src = w["clones"] / "own+plain" / "seqs/Alpha/img"
    assert [p.read_bytes() for p in sorted((a / "img").iterdir())] == [p.read_bytes() for p in sorted(src.iterdir())]
    seq = load_otb_sequence(a)
    np.testing.assert_array_equal(seq.init_box, [9, 19, 8, 6])
    prov = json.loads((a / "provenance.json").read_text())
    assert prov["source_repo"] == "own/plain" and prov["commit"] == C_A and prov["commit_verified"] is False
    assert prov["path_in_repo"]["images"] == "seqs/Alpha/img" and prov["licence_note"] == "test licence"
    assert prov["repo_licence_file"] == "LICENSE: MIT License"
    assert prov["frame_sha1"]["0001.jpg"] == hashlib.sha1((src / "0001.jpg").read_bytes()).hexdigest()
    assert prov["checks"]["reserved"] == str(w["reserved"])

    # polygon8 + frame_offset + gt_line_offset + n_usable, read at the pinned commit (HEAD is later)
    b = out / "VOT_beta"
    assert [p.name for p in sorted((b / "img").iterdir())] == [f"{k:08d}.jpg" for k in range(1, 5)]
    assert (b / "groundtruth_rect.txt").read_text().splitlines() == \
        ["10.5,14,10,16", "11,14,12,15", "NaN,NaN,NaN,NaN", "5,6,10,10"]
    pb = json.loads((b / "provenance.json").read_text())
    assert pb["frame_range_in_repo"] == ["00000001.jpg", "00000004.jpg"] and pb["gt_lines_used"] == [3, 6]
    assert pb["commit_verified"] is w["git"]
    if w["git"]:  # a bare clone (as `git clone --bare` or a mirror) is read at the pinned commit too
        bare = w["out"].parent / "bare.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(w["clones"] / "own+gitrepo"), str(bare)], check=True)
        res_b = _build(bc, w, names=["VOT_beta"], repo_map={"own/gitrepo": str(bare)}, force=True)
        assert list(res_b["built"]) == ["VOT_beta"]
        assert (b / "groundtruth_rect.txt").read_text().splitlines()[0] == "10.5,14,10,16"
        _git(w["clones"] / "own+gitrepo", "checkout", "-q", pb["commit"])  # a clone at the commit: read in place
        res_c = _build(bc, w, names=["VOT_beta"], force=True)
        assert list(res_c["built"]) == ["VOT_beta"] and json.loads((b / "provenance.json").read_text())[
            "commit_verified"] is True

    index = json.loads((out / "sequences.json").read_text())
    assert [s["name"] for s in index["sequences"]] == ["OTB_Alpha", "VOT_beta"] and index["total_frames"] == 9
    assert index["sequences"][0]["first_gt"] == [10.0, 20.0, 8.0, 6.0]
    assert index["sequences"][1]["source_repo"] == "own/gitrepo"
    assert list_sequences(out) == ["OTB_Alpha", "VOT_beta"]

    # resumable: a left-over partial folder is replaced, finished folders are skipped
    shutil.rmtree(b)
    (out / ".VOT_beta.partial" / "img").mkdir(parents=True)
    res2 = _build(bc, w)
    assert res2["done"] == {"OTB_Alpha": "exists"} and list(res2["built"]) == ["VOT_beta"]
    assert not (out / ".VOT_beta.partial").exists()

    # a checked name-only match can be accepted; frame-byte and reserved matches cannot
    res3 = _build(bc, w, allow_existing=["OTB_Zeta", "OTB_Eta", "UAV123_10fps_delta_2"])
    assert list(res3["built"]) == ["OTB_Zeta"] and "OTB_Eta" in res3["refused"]
    assert "UAV123_10fps_delta_2" in res3["refused"]
    assert "accepted as a different video" in json.loads(
        (out / "OTB_Zeta" / "provenance.json").read_text())["checks"]["accepted_matches"][0]


def test_reserved_list_required(bc, world, capsys):
    w = world
    with pytest.raises(MetaRTTError, match="no reserved list"):
        bc.build_corpus(w["out"], w["clones"], manifest=w["manifest"], existing=w["existing"])
    rc = bc.main([str(w["out"]), "--repos", str(w["clones"]), "--manifest", str(w["manifest"]),
                  "--existing", str(w["existing"])])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: no reserved list") and err.count("\n") == 1
    assert not w["out"].exists() or not any(w["out"].iterdir())
    # explicitly without the check, the reserved videos are built; the existing check still applies
    res = _build(bc, w, reserved=None, no_reserved_check=True)
    assert "UAV123_10fps_delta_2" in res["built"] and "OTB_Gamma" in res["built"]
    assert set(res["refused"]) == {"OTB_Zeta", "OTB_Eta"}
    # a reserved list that exists is applied even with --no-reserved-check
    res = _build(bc, w, no_reserved_check=True, force=True, names=["OTB_Gamma"])
    assert res["refused"]["OTB_Gamma"].startswith("reserved:")


def test_bad_inputs(bc, world, capsys):
    w = world
    bad = w["reserved"].parent / "bad.json"
    bad.write_text(json.dumps({"frame_file_sha1": ["xyz"], "base_name_sha256": []}))
    with pytest.raises(MetaRTTError, match="no non-empty 'base_name_sha256'|malformed"):
        _build(bc, w, reserved=bad)
    man = json.loads(w["manifest"].read_text())
    man["entries"][0]["n_frames"] = 9
    man["entries"].append(dict(man["entries"][0], name="OTB_Missing", repo="own/absent"))
    w["manifest"].write_text(json.dumps(man))
    rc = bc.main([str(w["out"]), "--repos", str(w["clones"]), "--manifest", str(w["manifest"]),
                  "--reserved", str(w["reserved"]), "--existing", str(w["existing"]),
                  "--names", "OTB_Alpha,OTB_Missing"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "refuse OTB_Alpha: source differs from the manifest: 5 frames, manifest says 9" in out
    assert "error OTB_Missing: no clone of own/absent" in out
    assert not (w["out"] / "OTB_Alpha").exists()
