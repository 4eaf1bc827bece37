# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench budgets conformance

# The conformance suite again in each extra environment of scripts/envs.sh (the newest releases
# on Python 3.12 and 3.13, the oldest supported set on 3.11); .venv runs it with the rest.
ENVS = $(shell bash scripts/envs.sh --list)

demo:
	@bash scripts/bootstrap.sh --demo
	@$(BIN)/obs demo

test:
	@bash scripts/bootstrap.sh --system
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy --strict src/obs tests/typing/api.py
	$(BIN)/python -m bench.instructions --check
	$(BIN)/python -m pytest
	@$(MAKE) --no-print-directory conformance

conformance:
	@bash scripts/envs.sh
	@for env in $(ENVS); do echo "conformance suite in .envs/$$env"; \
	  .envs/$$env/bin/python -m pytest -q tests/conformance || exit 1; done

lint:
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy --strict src/obs tests/typing/api.py

# Instructions per request against bench/budgets.json (callgrind; fails 3 % over a budget).
budgets:
	$(BIN)/python -m bench.instructions --check

bench:
	@bash scripts/bootstrap.sh
	$(BIN)/python -m bench.instructions --check
	$(BIN)/python -m bench
