# yolo-fasternet developer entry points. Two commands matter on a fresh machine: `make demo` and `make test`.
# `make docs` serves the documentation site (docs/, mkdocs.yml) locally.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ULTRALYTICS_OLDEST ?= 8.3.0
export YOLO_OFFLINE ?= 1
# mkdocs-material prints a banner about MkDocs 2.0 on every build; this silences it
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: demo test lint format install install-test install-docs docs docs-build test-oldest-ultralytics mutation clean

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

# Reinstall only ultralytics at the oldest supported release, rerun the registration and YAML tests, then put the
# previous release back (pip would keep 8.3.0: it satisfies the project's range).
test-oldest-ultralytics: install-test
	@current=$$($(PY) -c "import importlib.metadata as m; print(m.version('ultralytics'))"); \
	$(PIP) install --quiet --no-deps "ultralytics==$(ULTRALYTICS_OLDEST)" && \
	$(PY) -c "import ultralytics; print('registration tests on ultralytics', ultralytics.__version__)" && \
	$(PY) -m pytest -m registration; status=$$?; \
	$(PIP) install --quiet --no-deps "ultralytics==$$current"; exit $$status

# Mutation testing (not part of `make test`: hours on two cores): each package's mutants against the in-process tests
# that exercise it, scores printed, survivors listed in build/mutation/<package>/survivors.txt. PACKAGES=nn limits it.
mutation: install-test
	$(PIP) install --quiet -e ".[mutation]"
	$(PY) scripts/mutation.py $(PACKAGES)

clean:
	rm -rf $(VENV) build dist site *.egg-info .pytest_cache .ruff_cache runs
