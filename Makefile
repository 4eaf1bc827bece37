# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

demo:
	@bash scripts/bootstrap.sh --demo
	@$(BIN)/obs demo

test:
	@bash scripts/bootstrap.sh --system
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy --strict src/obs tests/typing/api.py
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy --strict src/obs tests/typing/api.py

bench:
	@bash scripts/bootstrap.sh
	$(BIN)/python -m bench
