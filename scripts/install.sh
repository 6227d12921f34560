#!/usr/bin/env bash
# Installs everything metartt_lite needs (Python packages; Debian's chromium for the browser test when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
# Only the contrib build of OpenCV has CSRT/KCF; opencv-python(-headless) beside it shadows them.
python -m pip uninstall --yes --quiet opencv-python opencv-python-headless opencv-contrib-python 2>/dev/null || true
python -m pip install --quiet -e ".[test]"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped"
fi
