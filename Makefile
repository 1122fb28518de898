# The two commands of the README: `make serve` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test conformance bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/openeo-backend serve $(ARGS)

test: $(STAMP)
	bash scripts/ensure-test-tools.sh
	$(VENV)/bin/python -m pytest $(ARGS)

conformance: $(STAMP)
	$(VENV)/bin/python conformance/run.py $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/python tests/benchmarks/bench_metadata.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
