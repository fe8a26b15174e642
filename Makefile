# Training Deep Neural Networks: the two commands are `make book` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
# The course's networks are tiny: one BLAS thread per process is faster than two that fight
# over the cores (pytest runs two processes). Benchmarks keep torch's default.
book test test-fast: export OMP_NUM_THREADS := 1

.PHONY: setup book test test-fast browser bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Debian's chromium for the HTML tests (root, or sudo without a password).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

book: setup
	$(BIN)/jupyter-book build . --warningiserror --keep-going --quiet

test: setup browser book
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not book and not browser"

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf _build .pytest_cache
