# yolo-fasternet developer entry points. Two commands matter on a fresh machine: `make demo` and `make test`.
# `make docs` serves the documentation site (docs/, mkdocs.yml) locally.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The two ends of the supported range (yolo_fasternet/supported.py), each a CI leg in its own venv: .ci/leg
PYTHON_OLDEST ?= 3.9.18
PYTHON_NEWEST ?= 3.13.0
export YOLO_OFFLINE ?= 1
# mkdocs-material prints a banner about MkDocs 2.0 on every build; this silences it
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: demo test lint format install install-test install-docs docs docs-build test-oldest test-newest mutation clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Installs the project (editable) with torch and torchvision resolved together from the registry.
install: $(PY)
	$(PIP) install --quiet -e .

install-test: $(PY)
	$(PIP) install --quiet -e ".[test]"

install-docs: $(PY)
	$(PIP) install --quiet -e ".[docs]"

demo: install
	$(PY) train_yolo.py

lint: install-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install-test
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# The site must build without a warning (broken links, anchors, pages, docstrings); nothing is fetched.
docs-build: install-test
	$(PY) -m mkdocs build --strict --site-dir build/site

docs: install-docs
	$(PY) -m mkdocs serve

test: install-test lint docs-build
	$(PY) -m pytest

# Python 3.9, torch, torchvision and Ultralytics at their lowest supported releases (.ci/legs/oldest.txt), and 3.13
# with the newest of each (.ci/legs/newest.txt): the tests marked registration or range, then a one-epoch yolo train.
# Each venv is built once in ~/.cache/yolo-fasternet/venvs and reused (see .ci/leg).
test-oldest:
	.ci/leg oldest $(PYTHON_OLDEST)

# The newest leg skips the two slowest tests of the set, which the full suite runs on the same Ultralytics release:
# every stock Ultralytics YAML built twice (80+ models), and every bundled YAML built, run and fused at every scale.
test-newest:
	.ci/leg newest $(PYTHON_NEWEST) \
		--deselect tests/test_registration.py::test_stock_models_build_identically_with_and_without_the_plugin \
		--deselect tests/test_zoo.py::test_every_yaml_builds_runs_and_fuses_at_every_scale

# Mutation testing (not part of `make test`: hours on two cores): each package's mutants against the in-process tests
# that exercise it, scores printed, survivors listed in build/mutation/<package>/survivors.txt. PACKAGES=nn limits it.
mutation: install-test
	$(PIP) install --quiet -e ".[mutation]"
	$(PY) scripts/mutation.py $(PACKAGES)

clean:
	rm -rf $(VENV) build dist site *.egg-info .pytest_cache .ruff_cache runs
