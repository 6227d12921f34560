"""Vendor NanoTrack v2 into metartt_lite/weights/nanotrack/ from a clone of HonglinChu/SiamTrackers.

    git clone https://github.com/HonglinChu/SiamTrackers && git -C SiamTrackers checkout 248663fde6bf
    python scripts/vendor_nanotrack.py SiamTrackers/NanoTrack

Copies the ONNX pair that cv2.TrackerNano runs (byte for byte) and the licence, and converts the PyTorch
checkpoint ``models/pretrained/nanotrackv2.pth`` (a pickle with an optimizer state, which needs
``weights_only=False`` to read: only run this on the upstream file) into a plain tensor dict that the package
loads with ``torch.load(weights_only=True)``. The unused ``neck.*`` tensors (v2's tracker never calls its neck)
and BatchNorm counters are dropped; every other tensor is kept unchanged. Writes SOURCES.json with the SHA-256
of every source and shipped file."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parents[1] / "metartt_lite" / "weights" / "nanotrack"
ONNX = ["models/nanotrackv2/nanotrack_backbone_sim.onnx", "models/nanotrackv2/nanotrack_head_sim.onnx"]
PTH = "models/pretrained/nanotrackv2.pth"


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def main(src: str) -> None:
    root = Path(src)
    if not (root / PTH).is_file():
        sys.exit(f"error: {root / PTH} not found (pass the NanoTrack folder of a SiamTrackers clone)")
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}
    for rel in ONNX:
        dst = OUT / Path(rel).name.replace("_sim", "v2")
        shutil.copyfile(root / rel, dst)
        files[dst.name] = {"source": f"NanoTrack/{rel}", "sha256": sha256(dst)}
    sd = torch.load(root / PTH, map_location="cpu", weights_only=False)["state_dict"]
    keep = {k: v.float().contiguous() for k, v in sd.items()
            if not k.startswith("neck.") and not k.endswith("num_batches_tracked")}
    dst = OUT / "nanotrackv2.pt"
    torch.save(keep, dst)
    files[dst.name] = {"source": f"NanoTrack/{PTH}", "source_sha256": sha256(root / PTH), "sha256": sha256(dst),
                       "tensors": len(keep), "converted": "state_dict minus neck.* and num_batches_tracked"}
    shutil.copyfile(root / "LICENSE", OUT / "LICENSE")
    meta = {"repository": "https://github.com/HonglinChu/SiamTrackers", "commit": "248663fde6bf",
            "licence": "Apache-2.0 (LICENSE)", "files": files}
    (OUT / "SOURCES.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "SiamTrackers/NanoTrack")
