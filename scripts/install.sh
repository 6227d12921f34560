#!/usr/bin/env bash
# Installs everything metartt_lite needs (Python packages; Debian's chromium for the browser test when run as root).
# Version ranges live in pyproject.toml; constraints.txt pins the versions CI uses (torch 2.14.1 / torchvision 0.29.1).
# In your own environment: python -m venv .venv && . .venv/bin/activate, then this script (see README "Install").
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test]" -c constraints.txt
# The VOT toolkit, for tests/test_vot.py (our TraX server run by the toolkit). vot-toolkit 0.9.0 declares
# opencv-python, which would shadow the contrib build's cv2 (CSRT/KCF), so it is installed without its
# declared dependencies, then those it imports, less opencv-python (cv2 comes from the contrib build).
# attributee 0.1.10 fails to import on Python >= 3.11 (it applies typing.dataclass_transform to a class as
# if it were dataclass), so 0.1.9.
python -m pip install --quiet --no-deps "vot-toolkit==0.9.0"
# pip then reports vot-toolkit's missing opencv-python as a red "ERROR: pip's dependency resolver ..." although
# it is left out on purpose; those two lines are replaced by a note in our words (any other message stays).
pip_err=$(mktemp)
python -m pip install --quiet "attributee==0.1.9" "pylatex>=1.3" "jsonschema>=3.2" "pyyaml>=5.3" "numba>=0.47" \
  "requests>=2.22" "colorama>=0.4.3" "dominate>=2.5" "cachetools>=4.1" "bidict>=0.19" "phx-class-registry>=5.0" \
  "lazy-object-proxy>=1.9" six -c constraints.txt 2>"$pip_err" || { cat "$pip_err" >&2; rm -f "$pip_err"; exit 1; }
if grep -q "vot-toolkit .* requires opencv-python" "$pip_err"; then
  echo "note: vot-toolkit declares opencv-python; it is left out on purpose (it would hide the contrib build's" \
       "CSRT/KCF), so pip's dependency check reports it as missing: harmless." >&2
fi
grep -v -E "^ERROR: pip's dependency resolver does not currently|^vot-toolkit .* requires opencv-python" "$pip_err" >&2 || true
rm -f "$pip_err"
# Only the contrib build of OpenCV has CSRT/KCF. opencv-python(-headless) installed beside it shares the cv2 folder
# and can hide them: say so instead of removing another package behind the user's back.
shadow=$(python -m pip list --format=freeze 2>/dev/null | grep -i -E '^opencv-python(-headless)?==' || true)
if [ -n "$shadow" ]; then
  echo "warning: $(echo $shadow | tr '\n' ' ')is installed beside opencv-contrib-python-headless; they share the cv2" \
       "folder and the last one installed wins. If CSRT/KCF are missing, run:" \
       "pip uninstall -y opencv-python opencv-python-headless && pip install --force-reinstall opencv-contrib-python-headless" >&2
fi
python - <<'PY' || { echo "error: OpenCV's contrib trackers (CSRT/KCF) are not importable; see the warning above" >&2; exit 1; }
import cv2
assert hasattr(cv2, "TrackerCSRT_create") or hasattr(cv2, "TrackerCSRT"), cv2.__file__
PY
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped"
fi
