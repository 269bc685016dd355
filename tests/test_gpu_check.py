"""scripts/gpu_check.sh, the GPU check, run here in its CPU mode (--tiny: a tiny model, tiny settings) so that it
cannot rot: the bundled wheels install offline, the model builds from the committed config and tokenizer, the seed's
script and r1lab grpo run under r1lab bench, r1lab eval runs, and the report holds every figure."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "gpu_check.py")


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundle_is_complete_small_and_licensed():
    gpu_check = load_script()
    wheels = [name for name in os.listdir(gpu_check.WHEELS) if name.endswith(".whl")]
    for prefix in gpu_check.BUNDLED.values():
        assert sum(name.startswith(prefix) for name in wheels) == 1, prefix  # one version of each
    licences = os.listdir(os.path.join(gpu_check.WHEELS, "LICENSES"))
    assert len(licences) == len(gpu_check.BUNDLED)
    size = sum(
        os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(gpu_check.BUNDLE) for name in names
    )
    assert size < 60 * 2**20, f"the GPU check's bundle is {size / 2**20:.1f} MiB"


def test_a_missing_module_installs_from_its_bundled_wheel_offline(tmp_path):
    gpu_check = load_script()
    installed = gpu_check.install_missing(str(tmp_path / "site"), names=["dill"], force=True)
    assert installed == [name for name in os.listdir(gpu_check.WHEELS) if name.startswith("dill-")]
    assert (tmp_path / "site" / "dill" / "__init__.py").exists()
    assert gpu_check.install_missing(str(tmp_path / "site2"), names=["dill"]) == []  # present here: nothing to do


def test_the_gpu_check_runs_end_to_end_in_its_cpu_mode(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "gpu_check.sh"), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "gpu_check.json").read_text())
    for side in ("seed (TRL generate)", "r1lab grpo (HF generation)"):
        figures = result["grpo"][side]
        assert figures["seconds_per_step"] > 0 and figures["generation_tokens_per_s"] > 0, side
    assert result["eval"]["hf (r1lab's decoding loop)"]["tokens_per_second"] > 0
    assert (result["grpo"]["r1lab grpo (vLLM colocate)"] is None) == (importlib.util.find_spec("vllm") is None)
    assert "r1lab GPU check" in done.stdout and "s/step" in done.stdout and "tok/s" in done.stdout
