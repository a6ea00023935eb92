# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# portable backend everywhere: make test MATCHER_GROUP_BACKEND=portable
.PHONY: demo test test-stress lint node-client bench-node bench bench-compare bench-ci bench-1m bench-load-sql bench-paillier proto clean fuzz load bench-binding audit-report-sample

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ifma]' || $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The optional AVX-512 IFMA ristretto255 backend (docs/performance.md): built where a C
# compiler and the ipp-crypto wheel are present, otherwise the portable backend is used.
# Never fails the build; `matcher policy` and `serve` say which backend runs.
IFMA_DIR := matcher/protocols/_ifma
IFMA     := $(IFMA_DIR)/build/.stamp
$(IFMA): $(STAMP) $(IFMA_DIR)/ristretto255_ifma.c $(IFMA_DIR)/label_seal.c $(IFMA_DIR)/constants.h $(IFMA_DIR)/build.py
	$(PY) -m matcher.protocols._ifma.build
	mkdir -p $(IFMA_DIR)/build && touch $@

# Bytecode of the project's own modules, as a pip-installed package has it (an editable
# install has none, and with PYTHONDONTWRITEBYTECODE every process would compile its
# sources again at start-up: about 0.1 s a `matcher` command). Redone when a source changes.
BYTECODE := $(VENV)/.bytecode
$(BYTECODE): $(STAMP) $(shell find matcher clients -name '*.py' -not -path '*/node_modules/*' 2>/dev/null)
	$(PY) -m compileall -q matcher clients >/dev/null
	touch $@

READY := $(STAMP) $(IFMA) $(BYTECODE)

demo: $(READY)  ## two agencies on loopback, bundled synthetic data, hits printed
	$(VENV)/bin/matcher demo

NODE_CLIENT := clients/node

test: $(READY) node-client  ## the whole test suite (the Node client's too when node is installed)
	@if command -v node >/dev/null 2>&1; then cd $(NODE_CLIENT) && node --test test/; \
	else echo "node not found: the Node client's tests (clients/node) are SKIPPED"; fi
	$(PY) -m pytest -q

node-client:  ## install the Node client's locked dependencies (npm ci) when npm is installed
	@if command -v npm >/dev/null 2>&1; then \
		if [ ! -f $(NODE_CLIENT)/node_modules/.package-lock.json ] || \
		   [ $(NODE_CLIENT)/package-lock.json -nt $(NODE_CLIENT)/node_modules/.package-lock.json ]; then \
			cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --loglevel=error; fi; \
	else echo "npm not found: the Node client (clients/node) is not installed and its tests are SKIPPED"; fi

bench-node: $(READY) node-client  ## Node vs Python requester client, same records, same responder (ecdh)
	$(PY) bench/node_vs_python.py --size $(or $(BENCH_SIZE),2000)

STRESS_REPEAT ?= 5
STRESS_TESTS  ?= tests/test_e2e.py tests/test_faults.py tests/test_hostile.py tests/test_cli.py tests/test_network.py tests/test_reveal_both.py
test-stress: $(READY)  ## the end-to-end tests STRESS_REPEAT times each, stopping at the first failure, while a second full suite runs beside them as load
	@$(PY) -m pytest -q -p no:cacheprovider tests >/dev/null 2>&1 & load=$$!; \
	$(PY) -m pytest -q -x -p no:cacheprovider --count $(STRESS_REPEAT) $(STRESS_TESTS); status=$$?; \
	kill $$load 2>/dev/null; wait $$load 2>/dev/null; exit $$status

lint: $(STAMP)  ## quality gates: layer rules (import-linter), ruff, mypy (config in pyproject.toml); fails on any finding
	@status=0; \
	echo "lint-imports"; $(VENV)/bin/lint-imports || status=1; \
	echo "ruff check ."; $(VENV)/bin/ruff check . || status=1; \
	echo "mypy"; $(VENV)/bin/mypy || status=1; \
	exit $$status

bench: $(READY)  ## pytest-benchmark suites of the matching core
	$(PY) -m pytest -q bench --benchmark-only -p no:cacheprovider

bench-paillier: $(READY)  ## paillier kernels, then 10k x 10k over gRPC vs its measured arithmetic floor and a straightforward phe version
	$(PY) -m pytest -q bench/test_paillier_kernels.py --benchmark-only
	$(PY) bench/compare_paillier.py --size 10000

bench-binding: $(READY)  ## ecdh session with vs without the checks against a dishonest responder (µs per element, ratio)
	$(PY) bench/label_binding.py --size 20000 --rounds 5

proto: $(STAMP)  ## regenerate matcher/v1/*_pb2*.py from proto/ (commit the result)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/matcher/v1/matcher.proto

clean:
	rm -rf $(VENV) build $(IFMA_DIR)/build *.egg-info .pytest_cache .hypothesis

SIZES ?= 10000,100000
bench-compare: $(READY)  ## matcher vs OpenMined PSI on the same sets (own throw-away venv for openmined-psi)
	$(PY) bench/compare_openmined.py --sizes $(SIZES)

bench-ci: $(READY)  ## quick benchmark for CI: fails on ratios to the group operations, not on times
	$(PY) bench/ci_quick.py

N ?= 1000000
REPEAT ?= 1
bench-1m: $(READY)  ## 1M x 1M over loopback mTLS in separate processes; peak RSS of each (takes minutes)
	$(PY) bench/run_1m.py --n $(N) --repeat $(REPEAT)

bench-load-sql: $(READY)  ## N records (default 1,000,000) from PostgreSQL vs the same from CSV: rows/s and peak RSS (takes minutes)
	$(PY) bench/load_sql.py --n $(N)

FUZZ_EXAMPLES ?= 20000
fuzz: $(READY)  ## the fuzz targets of tests/test_fuzz.py with FUZZ_EXAMPLES examples each (make test runs 150)
	MATCHER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q tests/test_fuzz.py -p no:cacheprovider --timeout 0

SESSIONS ?= 32
RECORDS ?= 10000
load: $(READY)  ## SESSIONS concurrent requester sessions of RECORDS records each on loopback mTLS; checks answers and budgets
	$(PY) bench/load.py --sessions $(SESSIONS) --records $(RECORDS)

audit-report-sample: $(STAMP)  ## docs/audit-report.png: `matcher audit-report` on four weeks of demo-like sessions, shot by headless chromium
	$(PY) docs/make_audit_report_sample.py --out docs/audit-report.png
