"""The fast-path decision's reasons, from the settings alone (the tiny-model runs check the rest)."""

from __future__ import annotations

from types import SimpleNamespace

from r1lab.training.fast_paths import PATHS, FastPaths, sampler_ruled_out, zero_advantage_skip_ruled_out


def _sampling(**changes):
    settings = {
        "fast_paths": True,
        "generation_loop": "r1lab",
        "use_vllm": False,
        "use_transformers_continuous_batching": False,
        "top_k": 0,
        "min_p": None,
        "repetition_penalty": 1.0,
        "generation_kwargs": None,
    }
    return SimpleNamespace(**{**settings, **changes})


def test_the_sampler_names_the_setting_that_rules_it_out():
    assert sampler_ruled_out(_sampling()) is None
    assert sampler_ruled_out(_sampling(fast_paths=False)) == "fast_paths false"
    assert sampler_ruled_out(_sampling(generation_loop="trl")) == "generation_loop trl"
    assert sampler_ruled_out(_sampling(top_k=50)) == "top_k set"
    assert sampler_ruled_out(_sampling(use_vllm=True)).startswith("use_vllm")


def _trainer(**changes):
    args = SimpleNamespace(skip_zero_advantage_rows=True, entropy_coef=0.0, use_adaptive_entropy=False)
    trainer = {
        "args": args,
        "beta": 0.0,
        "loss_type": "dapo",
        "top_entropy_quantile": 1.0,
        "aux_loss_enabled": False,
        "accelerator": SimpleNamespace(num_processes=1),
    }
    for name, value in changes.items():
        if hasattr(args, name):
            setattr(args, name, value)
        else:
            trainer[name] = value
    return SimpleNamespace(**trainer)


def test_the_zero_advantage_skip_only_where_it_is_exact():
    assert zero_advantage_skip_ruled_out(_trainer()) is None
    assert zero_advantage_skip_ruled_out(_trainer(loss_type="grpo")) == "loss_type grpo: exact for dapo only"
    assert zero_advantage_skip_ruled_out(_trainer(beta=0.04)).startswith("beta 0.04")
    assert zero_advantage_skip_ruled_out(_trainer(entropy_coef=0.01)) == "an entropy bonus trains every row"
    assert zero_advantage_skip_ruled_out(_trainer(use_adaptive_entropy=True)) == "an entropy bonus trains every row"
    assert zero_advantage_skip_ruled_out(_trainer(skip_zero_advantage_rows=False)) == "skip_zero_advantage_rows false"


def test_the_record_and_the_log_line():
    paths = FastPaths(*([None] * (len(PATHS) - 1)), "loss_type grpo: exact for dapo only")
    assert list(paths.as_record()) == list(PATHS)
    assert paths.as_record()["zero_advantage_skip"] == "off: loss_type grpo: exact for dapo only"
    assert paths.summary().endswith("TRL's code: zero_advantage_skip (loss_type grpo: exact for dapo only)")
    assert paths.on("sampler") and not paths.on("zero_advantage_skip")
