"""Bad inputs to the training commands ``pretrain``, ``meta-train`` and ``prune-train``: each ends in exit
code 2 with exactly one ``error:`` line naming the problem, no traceback, and fails fast — before the
feature cache is built or a training step runs (the cache folder and ``--out`` stay empty). Called
in-process through ``metartt_lite.cli.main``. (demo / track / evaluate are covered by test_cli.py.)

Bad inputs tried per command (every case is one row of ``CASES``):

==============================================  ========  ==========  ===========
kind of bad input                               pretrain  meta-train  prune-train
==============================================  ========  ==========  ===========
--data: missing path / empty folder / a file       3          2           2
--split unknown                                    1          1           1
--sequences unknown name                           1          1           1
too few sequences (empty split; one sequence)      2          2           0
--out is a file / lies under a file                2          1           1
counts < 1 (--iterations, --episodes,              2          2           1
--meta-batch)
--tau outside [0, 1]                               0          0           1
--init-from / --checkpoint: missing, folder,       0          5          11
text, empty, truncated, foreign torch file,
tensor file, wrong kind, missing tensors,
none given
--resume from a corrupt / final / other-variant    0          4           2
*_last.pt
total                                             11         18          20
==============================================  ========  ==========  ===========

Six of these crashed with a traceback or succeeded silently before (fixed with this test): ``--out``
naming a file (FileExistsError, raised only at the first checkpoint write, i.e. after training),
``--meta-batch 0`` (ZeroDivisionError), an empty split with ``--no-hard-examples`` (ValueError),
``--resume`` from another variant's or a final checkpoint (ValueError / KeyError), and
``--iterations 0`` / ``--episodes 0`` (exit 0 with an untrained checkpoint — for ``pretrain`` by default
over the shipped ``weights/pretrain.pt``).
"""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from metartt_lite import cli
from metartt_lite.train import meta, prune
from metartt_lite.model import surgery, pruning_net
from metartt_lite.core.checkpoint import save_checkpoint
from metartt_lite.core.config import ModelConfig
from metartt_lite.model.net import build_net
from metartt_lite.data.samples import make_sample, write_sample_as_otb

CPU = torch.device("cpu")




@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny data root (3 sample sequences; splits train / val / empty) and checkpoints good and bad."""
    T = tmp_path_factory.mktemp("bad_inputs")
    root = T / "data"
    for i, preset in enumerate(["translation", "scale", "distractor"]):
        write_sample_as_otb(make_sample(preset, seed=i, n_frames=8, size=(160, 120)), root / f"s{i}")
    (root / "splits.json").write_text(json.dumps({"train": ["s0", "s1", "s2"], "val": ["s0"], "empty": []}))
    (T / "empty_dir").mkdir()
    (T / "a_file").write_text("not a folder")
    (T / "text.pt").write_text("hello")
    (T / "zero.pt").write_bytes(b"")
    torch.save({"weights": torch.zeros(3)}, T / "foreign.pt")
    torch.save(torch.zeros(3), T / "tensor.pt")

    # a meta checkpoint of the default architecture, as meta-train writes it at the end (no optimiser)
    mcfg, model_cfg = meta.MetaConfig(), ModelConfig()
    learner = meta.MetaLearner(build_net(model_cfg, CPU, seed=0), mcfg)
    extra = {"step": 1, "history": [], "wall_time_s": 0.0, "config": asdict(mcfg)}
    save_checkpoint(T / "meta.pt", "meta", model_cfg, meta.learner_tensors(learner), extra)
    (T / "trunc.pt").write_bytes((T / "meta.pt").read_bytes()[:5000])
    save_checkpoint(T / "meta_no_tensors.pt", "meta", model_cfg, {}, extra)
    save_checkpoint(T / "pretrain.pt", "pretrain", model_cfg, {}, {})
    # resume folders: a final checkpoint as meta_last.pt; a default-variant meta_last.pt (with optimiser)
    (T / "resume_final").mkdir()
    (T / "resume_final" / "meta_last.pt").write_bytes((T / "meta.pt").read_bytes())
    (T / "resume_corrupt").mkdir()
    (T / "resume_corrupt" / "meta_last.pt").write_bytes((T / "trunc.pt").read_bytes())
    (T / "resume_corrupt" / "prune_last.pt").write_bytes(b"PK\x03\x04 half a zip")
    (T / "resume_default").mkdir()
    save_checkpoint(T / "resume_default" / "meta_last.pt", "meta", model_cfg, meta.learner_tensors(learner),
                    {**extra, "optimizer": meta.build_optimizer(learner, mcfg).state_dict()})
    # a final prune checkpoint as prune_last.pt
    pc = prune.PruneConfig()
    widths = surgery.layer_widths(learner.net)
    psi = pruning_net.MaskPredictor(widths, pc.hidden, pc.dropout, pc.static_mask, pc.leaky_slope, pc.init_keep)
    (T / "prune_final").mkdir()
    save_checkpoint(T / "prune_final" / "prune_last.pt", "prune", model_cfg, prune._psi_tensors(psi),
                    {"step": 1, "history": [], "wall_time_s": 0.0, "config": asdict(pc), "widths": widths})
    return T


# (command, arguments, words the error line must contain); "T/" is the fixture folder, "OUT" a fresh
# output folder per case. Every case bounds the work (--iterations / --episodes 1) in case a check is
# missing, and pretrain always gets --out (its default is the package's weights folder).
CASES = [
    # ---------------------------------------------------------------- pretrain (11)
    ("pretrain", "--data T/nope --out OUT --iterations 1", ["data folder", "nope", "does not exist"]),
    ("pretrain", "--data T/empty_dir --out OUT --iterations 1", ["split 'train'", "splits.json"]),
    ("pretrain", "--data T/a_file --out OUT --iterations 1", ["data folder", "a_file"]),
    ("pretrain", "--data T/data --split bogus --out OUT --iterations 1", ["unknown split 'bogus'", "train"]),
    ("pretrain", "--data T/data --sequences s0,Nemo --out OUT --iterations 1", ["Nemo", "s1"]),
    ("pretrain", "--data T/data --split empty --out OUT --iterations 1", ["at least 2"]),
    ("pretrain", "--data T/data --sequences s0 --out OUT --iterations 1", ["at least 2"]),
    ("pretrain", "--data T/data --out T/a_file --iterations 1", ["--out", "a_file", "not a folder"]),
    ("pretrain", "--data T/data --out T/a_file/sub --iterations 1", ["--out", "a_file", "not a folder"]),
    ("pretrain", "--data T/data --out OUT --iterations 0", ["--iterations", "at least 1"]),
    ("pretrain", "--data T/data --out OUT --iterations -5", ["--iterations", "-5"]),
    # -------------------------------------------------------------- meta-train (18)
    ("meta-train", "--data T/nope --out OUT --episodes 1", ["data folder", "nope"]),
    ("meta-train", "--data T/empty_dir --out OUT --episodes 1", ["split 'train'", "splits.json"]),
    ("meta-train", "--data T/data --split bogus --out OUT --episodes 1", ["unknown split 'bogus'"]),
    ("meta-train", "--data T/data --sequences s0,Nemo --out OUT --episodes 1", ["Nemo"]),
    ("meta-train", "--data T/data --sequences s0 --out OUT --episodes 1", ["hard examples", "at least 2"]),
    ("meta-train", "--data T/data --split empty --no-hard-examples --out OUT --episodes 1", ["at least 1", "empty"]),
    ("meta-train", "--data T/data --out OUT --episodes 1 --init-from T/nope.pt", ["nope.pt", "does not exist"]),
    ("meta-train", "--data T/data --out OUT --episodes 1 --init-from T/empty_dir", ["empty_dir", "not a file"]),
    ("meta-train", "--data T/data --out OUT --episodes 1 --init-from T/text.pt", ["text.pt", "corrupt"]),
    ("meta-train", "--data T/data --out OUT --episodes 1 --init-from T/trunc.pt", ["trunc.pt", "corrupt"]),
    ("meta-train", "--data T/data --out OUT --episodes 1 --init-from T/meta.pt", ["'meta'", "expected 'pretrain'"]),
    ("meta-train", "--data T/data --out T/a_file --episodes 1", ["--out", "not a folder"]),
    ("meta-train", "--data T/data --out OUT --episodes 0", ["--episodes", "at least 1"]),
    ("meta-train", "--data T/data --out OUT --episodes 1 --meta-batch 0", ["--meta-batch", "at least 1"]),
    ("meta-train", "--data T/data --out T/resume_corrupt --episodes 1 --resume --init-from scratch",
     ["meta_last.pt", "corrupt"]),
    ("meta-train", "--data T/data --out T/resume_final --episodes 2 --resume --init-from scratch",
     ["meta_last.pt", "no optimiser state"]),
    ("meta-train", "--data T/data --out T/resume_default --episodes 2 --resume --meta-tracker --init-from scratch",
     ["meta_last.pt", "other settings", "new --out"]),
    ("meta-train", "--data T/data --out T/resume_default --episodes 2 --resume --scalar-lr --init-from scratch",
     ["meta_last.pt", "wrong shape"]),
    # ------------------------------------------------------------- prune-train (20)
    ("prune-train", "--data T/nope --checkpoint T/meta.pt --out OUT --episodes 1", ["data folder", "nope"]),
    ("prune-train", "--data T/empty_dir --checkpoint T/meta.pt --out OUT --episodes 1", ["splits.json"]),
    ("prune-train", "--data T/data --split bogus --checkpoint T/meta.pt --out OUT --episodes 1", ["'bogus'"]),
    ("prune-train", "--data T/data --sequences Nemo --checkpoint T/meta.pt --out OUT --episodes 1", ["Nemo"]),
    ("prune-train", "--data T/data --out OUT --episodes 1", ["--checkpoint", "--no-meta"]),
    ("prune-train", "--data T/data --checkpoint T/nope.pt --out OUT --episodes 1", ["nope.pt", "does not exist"]),
    ("prune-train", "--data T/data --checkpoint T/empty_dir --out OUT --episodes 1", ["empty_dir", "not a file"]),
    ("prune-train", "--data T/data --checkpoint T/trunc.pt --out OUT --episodes 1", ["trunc.pt", "corrupt"]),
    ("prune-train", "--data T/data --checkpoint T/text.pt --out OUT --episodes 1", ["text.pt", "corrupt"]),
    ("prune-train", "--data T/data --checkpoint T/zero.pt --out OUT --episodes 1", ["zero.pt", "corrupt"]),
    ("prune-train", "--data T/data --checkpoint T/foreign.pt --out OUT --episodes 1",
     ["foreign.pt", "not a metartt_lite checkpoint"]),
    ("prune-train", "--data T/data --checkpoint T/tensor.pt --out OUT --episodes 1",
     ["tensor.pt", "not a metartt_lite checkpoint"]),
    ("prune-train", "--data T/data --checkpoint T/pretrain.pt --out OUT --episodes 1", ["'pretrain'", "expected 'meta'"]),
    ("prune-train", "--data T/data --checkpoint T/meta_no_tensors.pt --out OUT --episodes 1",
     ["meta_no_tensors.pt", "missing tensors"]),
    ("prune-train", "--data T/data --no-meta --checkpoint T/meta.pt --out OUT --episodes 1", ["expected 'pretrain'"]),
    ("prune-train", "--data T/data --checkpoint T/meta.pt --out T/a_file --episodes 1", ["--out", "not a folder"]),
    ("prune-train", "--data T/data --checkpoint T/meta.pt --out OUT --episodes 0", ["--episodes", "at least 1"]),
    ("prune-train", "--data T/data --checkpoint T/meta.pt --out OUT --episodes 1 --tau 2", ["--tau", "[0, 1]"]),
    ("prune-train", "--data T/data --checkpoint T/meta.pt --out T/prune_final --episodes 2 --resume",
     ["prune_last.pt", "no optimiser state"]),
    ("prune-train", "--data T/data --checkpoint T/meta.pt --out T/resume_corrupt --episodes 2 --resume",
     ["prune_last.pt", "corrupt"]),
]


@pytest.mark.parametrize("command, args, needles", CASES, ids=[f"{c}:{a}" for c, a, _ in CASES])
def test_bad_input_is_one_error_line_before_any_work(files, tmp_path, monkeypatch, capsys, command, args, needles):
    cache = tmp_path / "cache"
    monkeypatch.setenv("METARTT_CACHE", str(cache))
    monkeypatch.setenv("METARTT_DEVICE", "cpu")
    out = tmp_path / "out"
    argv = [command] + [a.replace("T/", f"{files}/").replace("OUT", str(out)) for a in args.split()]
    before = {p: p.stat().st_mtime_ns for p in files.rglob("*")}
    rc = cli.main(argv)
    _, err = capsys.readouterr()
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    # failed fast: no feature cache built, nothing written to --out, the inputs untouched
    assert not (cache / "features").exists() or not any((cache / "features").iterdir())
    assert not out.exists() or not any(out.iterdir())
    assert {p: p.stat().st_mtime_ns for p in files.rglob("*")} == before
