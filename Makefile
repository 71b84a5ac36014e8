# Two commands from nothing: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := demo-output

.PHONY: demo test install bench clean-demo

install: $(STAMP)

# torch and torchvision are named in the same pip call as everything else, all pinned by constraints.txt.
$(STAMP): setup.py pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt torch==2.14.1 torchvision==0.29.1 -e '.[dask,test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/hbens demo -o $(DEMO)

bench: $(STAMP)
	$(BIN)/python benchmarks/rle.py
