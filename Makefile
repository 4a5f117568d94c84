# Two commands set up a fresh machine (Python 3.11, pip, make) by themselves:
#   make demo   — virtual environment, install, then validate, list and settle the shipped packs
#   make test   — virtual environment, install, then every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean venv serve member-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py
	$(BIN)/python tools/demo_gateway.py
	$(BIN)/python tools/member_demo.py

member-demo: $(STAMP)
	$(BIN)/python tools/member_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -n 2

serve: $(STAMP)
	$(BIN)/rules-engine serve --regions regions

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python tools/bench_load.py
	$(BIN)/python tools/bench_settle.py
	$(BIN)/python tools/bench_batch.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
