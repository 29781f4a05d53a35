# PlantBot developer tasks. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check bot tests migrations
	$(BIN)/mypy bot

demo: $(STAMP)
	$(BIN)/plantbot demo --out demo

bench: $(STAMP)
	$(BIN)/plantbot bench

clean:
	rm -rf $(VENV) demo out .pytest_cache .mypy_cache .ruff_cache
