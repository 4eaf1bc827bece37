# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench budgets

demo:
	@bash scripts/bootstrap.sh --demo
	@$(BIN)/obs demo

test:
	@bash scripts/bootstrap.sh --system
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy --strict src/obs
	$(BIN)/python -m bench.instructions --check
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy --strict src/obs

# Instructions per request against bench/budgets.json (callgrind; fails 3 % over a budget).
budgets:
	$(BIN)/python -m bench.instructions --check

bench:
	@bash scripts/bootstrap.sh
	$(BIN)/python -m bench.instructions --check
	$(BIN)/python -m bench
