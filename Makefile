# The two commands of the README: `make serve` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test reliability-long conformance bench lock clean

# constraints.txt pins the tested versions; `make lock` refreshes it (scripts/lock.sh).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[backend,test]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/openeo-backend serve $(ARGS)

test: $(STAMP)
	bash scripts/ensure-test-tools.sh
	$(VENV)/bin/python -m pytest $(ARGS)

# The long profile of the reliability suites (issue 13): more fuzzed requests, full load; see tests/reliability.
reliability-long: $(STAMP)
	bash scripts/ensure-test-tools.sh
	RELIABILITY_PROFILE=long $(VENV)/bin/python -m pytest tests/reliability $(ARGS)

conformance: $(STAMP)
	$(VENV)/bin/python conformance/run.py $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/python tests/benchmarks/run.py $(ARGS)

lock:
	PYTHON=$(PYTHON) bash scripts/lock.sh

clean:
	rm -rf $(VENV) .pytest_cache
