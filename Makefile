# The README's two commands: `make demo` (install + main job on an embedded sample) and `make test`.
PY ?= python

.PHONY: install demo test
install:
	bash scripts/install.sh

demo: install
	$(PY) -m metartt_lite demo

# unit/integration tests, then every notebook in fast mode (nbval runs each in a fresh kernel; lax mode
# checks that the cells run, the notebooks' own asserts check the numbers)
test:
	$(PY) -m pytest -q tests
	METARTT_FAST=1 $(PY) -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=300 notebooks
