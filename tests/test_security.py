"""Security: no model's code runs unless asked (trust_remote_code off), no model output is ever executed, and
paths from configs (pipeline and stage names, final evals, report images) stay in the chosen directory."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import os
import shutil

import pytest
import yaml

from r1lab.cli import main as cli_main
from r1lab.commands import COMMANDS

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "r1lab")


def config_classes():
    for name, command in COMMANDS.items():
        yield name, getattr(importlib.import_module(command.module), command.config_class)


def test_trust_remote_code_is_off_by_default_everywhere():
    with_the_field = []
    for name, config_class in config_classes():
        fields = {field.name: field for field in dataclasses.fields(config_class)}
        if "trust_remote_code" in fields:
            with_the_field.append(name)
            assert fields["trust_remote_code"].default is False, name
    assert {"grpo", "sft", "eval", "cold-start-data", "rejection-sampling"} <= set(with_the_field)
    import inspect

    from r1lab.models import load_model, load_tokenizer
    from r1lab.rewards import model_rewards

    for function in (load_model, load_tokenizer):
        assert inspect.signature(function).parameters["trust_remote_code"].default is False
    public = [obj for name, obj in vars(model_rewards).items() if inspect.isfunction(obj) and not name.startswith("_")]
    with_option = [obj for obj in public if "trust_remote_code" in inspect.signature(obj).parameters]
    assert len(with_option) >= 2  # the classifier and the judge
    for function in with_option:
        assert inspect.signature(function).parameters["trust_remote_code"].default is False, function.__name__


def test_a_model_that_ships_its_own_code_is_refused_and_its_code_never_runs(tiny_model_dir, tmp_path, capsys):
    model = tmp_path / "custom-code-model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config.update(
        model_type="custom_llama",
        architectures=["CustomModel"],
        auto_map={"AutoConfig": "modeling_custom.CustomConfig", "AutoModelForCausalLM": "modeling_custom.CustomModel"},
    )
    (model / "config.json").write_text(json.dumps(config))
    sentinel = tmp_path / "code-ran"
    (model / "modeling_custom.py").write_text(
        f"open({str(sentinel)!r}, 'w').write('ran')\n"
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "class CustomConfig(LlamaConfig):\n    model_type = 'custom_llama'\n"
        "class CustomModel(LlamaForCausalLM):\n    config_class = CustomConfig\n"
    )
    code = cli_main(
        [
            "eval",
            "--model",
            str(model),
            "--task",
            "gym:chain_sum",
            "--task_size",
            "4",
            "--limit",
            "2",
            "--max_new_tokens",
            "4",
            "--progress",
            "false",
            "--output_dir",
            str(tmp_path / "eval"),
        ]
    )
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("r1lab: error:")]
    assert len(errors) == 1 and "custom code" in errors[0]
    assert not sentinel.exists()
    assert not (tmp_path / "eval").exists()


def unsafe_calls(source: str, where: str = "") -> list[str]:
    """Calls that could execute text (eval/exec/compile), deserialise it unsafely (pickle, yaml.load, torch.load
    without weights_only=True) or hand it to a shell."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        name = (
            function.id
            if isinstance(function, ast.Name)
            else function.attr
            if isinstance(function, ast.Attribute)
            else None
        )
        owner = (
            function.value.id if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name) else None
        )
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        at = f"{where}:{node.lineno}"
        if isinstance(function, ast.Name) and name in ("eval", "exec", "compile", "__import__"):
            problems.append(f"{at}: {name}()")
        if owner == "pickle" or (owner == "yaml" and name in ("load", "unsafe_load", "full_load", "load_all")):
            problems.append(f"{at}: {owner}.{name}()")
        if (owner == "os" and name in ("system", "popen")) or name == "getoutput":
            problems.append(f"{at}: {owner}.{name}()")
        shell = keywords.get("shell")
        if isinstance(shell, ast.Constant) and shell.value is True:
            problems.append(f"{at}: shell=True")
        if owner == "torch" and name == "load":
            weights_only = keywords.get("weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                problems.append(f"{at}: torch.load without weights_only=True")
    return problems


# task code's scripts that run only as programs inside the code sandbox (r1lab.code.sandbox starts them there;
# no r1lab module imports them): running a program is their job, in a process of its own, limited and isolated.
SANDBOX_SCRIPTS = {os.path.join("code", name) for name in ("_candidate.py", "_judge.py", "_remote_harness.py")}


def test_no_model_output_is_ever_executed():
    """Every r1lab module, parsed: no eval/exec/compile, no unsafe deserialisation, no shell (the code sandbox's
    own scripts aside: they run only inside the sandbox, and no module imports them)."""
    sources = [
        os.path.join(folder, name) for folder, _, names in os.walk(PACKAGE) for name in names if name.endswith(".py")
    ]
    assert len(sources) > 20
    problems = []
    for path in sources:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        if os.path.relpath(path, PACKAGE) in SANDBOX_SCRIPTS:
            continue
        problems += unsafe_calls(source, os.path.relpath(path, PACKAGE))
        imported = {
            alias.name.rsplit(".", 1)[-1]
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        imported |= {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom) and node.module
        }
        problems += [
            f"{path}: imports the sandbox script {name}"
            for name in imported
            if os.path.join("code", name + ".py") in SANDBOX_SCRIPTS
        ]
    assert problems == []


def test_the_scan_finds_what_it_looks_for():
    planted = (
        "x = eval(completion)\nexec(text)\nyaml.load(s)\nyaml.safe_load(s)\npickle.loads(b)\n"
        "subprocess.run(c, shell=True)\nsubprocess.run([c])\nos.system(c)\ntorch.load(p)\ntorch.load(p, weights_only=True)\n"
        "model.eval()\n"
    )
    assert unsafe_calls(planted) == [
        ":1: eval()",
        ":2: exec()",
        ":3: yaml.load()",
        ":5: pickle.loads()",
        ":6: shell=True",
        ":8: os.system()",
        ":9: torch.load without weights_only=True",
    ]


# ------------------------------------------------------------------------------------------------------------
# Paths from configs stay inside the chosen directory
# ------------------------------------------------------------------------------------------------------------
DATA_STAGE = {"name": "data", "command": "cold-start-data", "config": {"task": "gym:chain_sum", "task_size": 4}}


def _pipeline(tmp_path, stages, **extra) -> str:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"stages": stages, **extra}))
    return str(path)


@pytest.mark.parametrize(
    "stages, extra, message",
    [
        ([{**DATA_STAGE, "name": "../../escaped"}], {}, "name must be letters, digits, - or _"),
        ([{**DATA_STAGE, "name": "/tmp/escaped"}], {}, "name must be letters, digits, - or _"),
        ([DATA_STAGE], {"name": "../escaped", "run_dir": None}, "pipeline name must be letters"),
        (
            [
                DATA_STAGE,
                {
                    "name": "train",
                    "command": "grpo",
                    "config": {"final_eval": {"limit": 2, "output_dir": "{outside}/eval"}},
                },
            ],
            {},
            "final_eval.output_dir",
        ),
    ],
    ids=["stage-name-dots", "stage-name-absolute", "pipeline-name", "final-eval-output"],
)
def test_pipeline_paths_cannot_escape_the_run_directory(stages, extra, message, tmp_path, monkeypatch, capsys):
    outside = tmp_path / "outside"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    text = yaml.safe_dump({"stages": stages, "run_dir": str(tmp_path / "runs" / "run"), **extra}).replace(
        "{outside}", str(outside)
    )
    (tmp_path / "pipeline.yaml").write_text(text)
    assert cli_main(["pipeline", "--config", str(tmp_path / "pipeline.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1lab: error:") and message.replace("{outside}", str(outside)) in err
    assert not outside.exists()
    assert sorted(os.listdir(tmp_path)) == ["pipeline.yaml", "runs"] and os.listdir(tmp_path / "runs") == []


def test_a_stage_directory_linked_elsewhere_is_refused(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.symlink(outside, run_dir / "01-data")
    assert cli_main(["pipeline", "--config", _pipeline(tmp_path, [DATA_STAGE]), "--run_dir", str(run_dir)]) == 2
    assert "is outside the run directory" in capsys.readouterr().err
    assert os.listdir(outside) == []


def test_stage_output_settings_are_the_pipelines_not_the_stage_configs(tmp_path):
    """A stage config that names its own output (a recipe written for standalone use) still writes in the run."""
    outside = tmp_path / "outside"
    recipe = _pipeline(tmp_path, [{**DATA_STAGE, "config": {**DATA_STAGE["config"], "output": str(outside / "data")}}])
    run_dir = tmp_path / "run"
    assert cli_main(["pipeline", "--config", recipe, "--run_dir", str(run_dir)]) == 0
    assert (run_dir / "01-data" / "train.jsonl").is_file()
    assert not outside.exists()


def test_standalone_final_eval_cannot_write_outside_the_stage_output(tiny_model_dir, tmp_path, capsys):
    code = cli_main(
        [
            "grpo",
            "--model",
            tiny_model_dir,
            "--task",
            "gym:chain_sum",
            "--output_dir",
            str(tmp_path / "out"),
            "--final_eval",
            f"{{limit: 2, output_dir: {tmp_path / 'elsewhere'}}}",
        ]
    )
    assert code == 2
    assert "is outside the stage's output_dir" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == []


def test_report_images_stay_beside_the_report_whatever_the_manifest_says(tmp_path):
    """A manifest's stage outputs are only read; the plots are named after them but written beside the page."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0, "reward": 0.5}) + "\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    manifest = {
        "name": "x",
        "stages": [
            {"name": "../../evil", "command": "grpo", "status": "finished", "output": "../outside"},
            {"name": "b", "command": "grpo", "status": "finished", "output": str(outside) + "/../outside/"},
        ],
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    before = {os.path.join(folder, name) for folder, _, names in os.walk(tmp_path) for name in names}
    assert cli_main(["report", str(run_dir)]) == 0
    after = {os.path.join(folder, name) for folder, _, names in os.walk(tmp_path) for name in names}
    new = after - before
    assert str(run_dir / "report.html") in new and any(path.endswith(".png") for path in new)
    assert all(os.path.dirname(path) == str(run_dir) for path in new), new
