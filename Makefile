# Two entry points: `make demo` (the main job on the embedded shapes dataset) and `make test`.
# Both create ./.venv and install the package into it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORK_DIR ?= work_dirs/demo

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,crf,synth]"
	touch $@

demo: install
	$(PY) -m wsss.cli.run_pipeline configs/pipeline/shapes.py --work-dir $(WORK_DIR)

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) work_dirs
