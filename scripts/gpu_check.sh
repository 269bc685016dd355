#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py): the seed's script against r1lab grpo, and r1lab eval, on one NVIDIA GPU,
# offline, in <= 8 minutes; --tiny runs the same logic on a CPU with a tiny model. PYTHON picks the interpreter
# (default: python3, the one that holds torch on the GPU box).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/gpu_check.py "$@"
