"""A missing shipped ``pretrain.pt`` is an error everywhere it would be used, never a silent random init:
the rtmdnet* presets (tests/test_registry.py), ``meta-train --init-from pretrained`` (the default) and
``prune-train --no-meta``. Each fails with one ``error:`` line naming the file, before any data is read
or any output written."""
from __future__ import annotations

from metartt_lite.train import meta, prune

from test_cli import assert_user_error, run_cli


def test_meta_train_without_pretrain_is_an_error(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "weights" / "pretrain.pt"
    monkeypatch.setattr(meta, "PRETRAINED", missing)
    # --data points nowhere: the checkpoint must be checked first
    rc, _, err = run_cli(["meta-train", "--data", tmp_path / "no-data", "--out", tmp_path / "m",
                          "--device", "cpu"], capsys)
    assert_user_error(rc, err, "pretrain checkpoint", str(missing), "--init-from scratch")
    assert not (tmp_path / "m").exists()
    rc, _, err = run_cli(["meta-train", "--data", tmp_path / "no-data", "--out", tmp_path / "m",
                          "--init-from", tmp_path / "other.pt", "--device", "cpu"], capsys)
    assert_user_error(rc, err, "other.pt", "does not exist")
    # the explicit opt-out goes on to the data (which is missing here): the checkpoint check passed
    rc, _, err = run_cli(["meta-train", "--data", tmp_path / "no-data", "--out", tmp_path / "m",
                          "--init-from", "scratch", "--device", "cpu"], capsys)
    assert_user_error(rc, err, "no-data", "does not exist")


def test_prune_train_no_meta_without_pretrain_is_an_error(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "weights" / "pretrain.pt"
    monkeypatch.setattr(prune, "PRETRAINED", missing)
    rc, _, err = run_cli(["prune-train", "--no-meta", "--data", tmp_path / "no-data", "--out", tmp_path / "p"],
                         capsys)
    assert_user_error(rc, err, "pretrain checkpoint", str(missing))
    assert not (tmp_path / "p").exists()
