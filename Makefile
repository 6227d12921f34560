# The README's two commands: `make demo` (install + main job on an embedded sample) and `make test`.
PY ?= python

.PHONY: install demo test
install:
	bash scripts/install.sh

demo: install
	$(PY) -m metartt_lite demo

test:
	$(PY) -m pytest -q tests
