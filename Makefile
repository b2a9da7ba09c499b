# The two commands a newcomer runs: `make demo` and `make test`. Both set up first.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
# Torch would start one thread per core in each test worker; two workers share 2 cores.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: setup demo demo-full test test-slow bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) -m tosc.demo

# the whole evaluation grid (5 SNRs x 4 CBRs x AWGN, block and fast fading, every system family,
# 1000 images); resumable; SHARD=I/N runs one slice (merge with tosc evaluate --merge)
demo-full: setup
	@$(PY) -m tosc.demo --full $(if $(SHARD),--shard $(SHARD))

test: setup
	$(TEST_ENV) $(PYTEST) -n 2 -q

test-slow: setup
	$(TEST_ENV) $(PYTEST) -n 2 -q -m slow

bench: setup
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
