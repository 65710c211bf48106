# make demo   - set up .venv and run the offline demo (GamesDrop sandbox + fake Telegram Bot API);
#               make demo LANG=ru plays it in Russian
# make run    - set up .venv and run the live shop from .env (see README, Configuration)
# make test   - set up .venv and run ruff and the whole test suite
# make bench  - run the benchmarks under bench/ and print their figures
# make lock   - re-resolve requirements.lock (image) and requirements-dev.lock (tests)
#               from pyproject.toml, with hashes (needs the package index)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOCK_VENV := .venv-lock
PIP_COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	--allow-unsafe --no-emit-index-url --no-emit-find-links --build-deps-for wheel

.PHONY: demo run test lint bench run-sandbox clean lock

# exactly the locked versions (hash-checked), then the project itself without resolving
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet pip-tools
	$(PIP_COMPILE) --upgrade -o requirements.lock pyproject.toml
	$(PIP_COMPILE) --upgrade --extra dev -o requirements-dev.lock pyproject.toml

demo: $(STAMP)
	$(BIN)/python -m bot.demo --language "$(LANG)"

run: $(STAMP)
	@test -f .env || { echo "make run reads .env: cp .env.example .env and fill in TELEGRAM__TOKEN, a supplier's token and ADMIN_IDS (README: Configuration)" >&2; exit 1; }
	$(BIN)/python -m bot

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

run-sandbox: $(STAMP)
	$(BIN)/python -m sandboxes.gamesdrop --port 8081

clean:
	rm -rf $(VENV) $(LOCK_VENV) .pytest_cache .ruff_cache *.egg-info
