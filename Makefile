# make demo   - set up .venv and run the offline demo (GamesDrop sandbox + fake Telegram Bot API)
# make test   - set up .venv and run ruff and the whole test suite
# make bench  - run the benchmarks under bench/ and print their figures
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench run-sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bot.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

run-sandbox: $(STAMP)
	$(BIN)/python -m services.gamesdrop.sandbox --port 8081

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
