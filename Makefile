# One entry point for people, schedulers and CI. `make demo` and `make test` are
# the two commands the README promises; both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed
# Nothing is fetched from a model hub at run time: the encoder comes from a PyPI package
# and the trained layers ship inside the sentiment package (sentiment/models/).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test soak test-all test-fast lint bench browser sqlite3-cli redis clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first and pinned: on these machines 2.13.0 is a local CPU wheel, while an
# unpinned torch would pull several GB of CUDA packages. Everything else, the encoder
# package included, is a declared dependency in pyproject.toml.
$(STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/reputation --db demo-output/reputation.db demo --out demo-output

# Chromium (Debian's package) is needed by the scorecard browser test and by `render: browser` sources
# (crawler.browser drives it through scrapy-playwright, from the `browser` and `test` extras: no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium missing and not root; browser tests will be skipped"; fi; }

# The sqlite3 shell (Debian's package) is what analysts open the database with; the
# concurrent-reader test runs it beside the writers.
sqlite3-cli:
	@command -v sqlite3 >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null) \
	      || echo "warning: could not install sqlite3; its reader test will be skipped"; \
	  else echo "warning: sqlite3 missing and not root; its reader test will be skipped"; fi; }

# Redis (Debian's package) backs the scale-out mode (`--redis`); its integration tests start
# redis-server on a free 127.0.0.1 port and stop it.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
	      || echo "warning: could not install redis-server; its integration tests will be skipped"; \
	  else echo "warning: redis-server missing and not root; its integration tests will be skipped"; fi; }

# pytest's exit code 5 means "no tests ran": that is a failure, not a pass.
PYTEST = $(BIN)/python -m pytest -q -p no:cacheprovider
define run_pytest
	$(PYTEST) $(1); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc
endef

# Every test but the soak (20,000 pages, a few minutes), the slow end-to-end ones included.
test: $(STAMP) browser sqlite3-cli redis
	$(call run_pytest,-m "not soak")

# The soak alone; `make test-all` (what CI runs, beside `make lint`) is `make test` plus this.
soak: $(STAMP)
	$(call run_pytest,-m soak)

test-all: test soak

# The quick loop while editing: everything but the slow end-to-end tests (demo crawl, model
# scoring, the installed-wheel run, kills) and the soak.
test-fast: $(STAMP)
	$(call run_pytest,-m "not slow and not soak")

lint: $(STAMP)
	$(BIN)/ruff check reputation crawler spiders sentiment relations storage demo_world docs tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
