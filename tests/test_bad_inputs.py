"""The bad-input battery: every command, every kind of bad input → one ``r1lab: error:`` line, exit code 2, no
traceback, nothing written or changed on disk (the whole working directory is compared before and after).

Kinds: missing files, malformed jsonl (the line number in the message), empty datasets, non-numeric gold
answers, wrong types in YAML, unknown names (command, task, reward, template), output paths that cannot be
written, settings no run can use (refused before a model loads), and a full disk (every write refused with
ENOSPC): then what was saved before is still there, byte for byte, and nothing half-written is left.

The commands run in-process (``r1lab.cli.main``) with the working directory set to the test's tmp_path.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import shutil

import pytest
import yaml

from r1lab.cli import main as cli_main
from r1lab.commands import COMMANDS
from r1lab.vllm_support import vllm_installed

GSM8K_ROW = {"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3 + 4 = 7\n#### 7"}
QA_ROW = {"question": "What is 3 + 4?", "answer": "7"}
CHAT_ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
CHAIN_SUM = [
    "--task",
    "gym:chain_sum",
    "--task_size",
    "4",
    "--task_options",
    "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
]


def _jsonl(rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def make_inputs(root, model_dir: str) -> dict[str, str]:
    """The files every case refers to, by placeholder; all under ``root`` (the working directory)."""

    def write(name: str, text: str) -> str:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    broken_line_2 = '\n{"question": "q", "answer": \n'
    places = {
        "{model}": model_dir,
        "{missing}": str(root / "no_such_file.jsonl"),
        "{missing_dir}": str(root / "no_such_dir"),
        "{file}": write("a_file.txt", "not a directory\n"),
        # malformed: line 2 is cut off
        "{bad_qa}": write("bad_qa.jsonl", json.dumps(QA_ROW) + broken_line_2),
        "{bad_gsm8k}": str(root / "bad_gsm8k"),
        "{bad_chat}": write("bad_chat.jsonl", json.dumps(CHAT_ROW) + broken_line_2),
        "{bad_zero}": write("bad_zero.jsonl", json.dumps({**QA_ROW, "completion": "x"}) + broken_line_2),
        "{not_objects}": write("not_objects.jsonl", json.dumps(QA_ROW) + "\n[1, 2]\n"),
        # empty: nothing, or blank lines only
        "{empty}": write("empty.jsonl", ""),
        "{blank}": write("blank.jsonl", "\n   \n\n"),
        "{empty_gsm8k}": str(root / "empty_gsm8k"),
        "{empty_run}": str(root / "empty_run"),
        # non-numeric gold answers
        "{words_gsm8k}": str(root / "words_gsm8k"),
        "{blank_gold}": write("blank_gold.jsonl", _jsonl([QA_ROW, {"question": "And?", "answer": "  "}])),
        # YAML with values of the wrong type
        "{grpo_yaml}": write("grpo.yaml", "learning_rate: fast\n"),
        "{sft_yaml}": write("sft.yaml", "max_steps: ten\n"),
        "{eval_yaml}": write("eval.yaml", "k: [1, 2]\n"),
        "{cold_yaml}": write("cold.yaml", "filters: 3\n"),
        "{rejection_yaml}": write("rejection.yaml", "general_ratio: lots\n"),
        "{report_yaml}": write("report.yaml", "samples_per_phase: many\n"),
        "{status_yaml}": write("status.yaml", "run_dir: [a, b]\n"),
        "{pipeline_yaml}": write("pipeline.yaml", "stages: {data: cold-start-data}\n"),
        "{list_yaml}": write("list.yaml", "- learning_rate: 1.0e-5\n"),
        "{broken_yaml}": write("broken.yaml", "learning_rate: 1.0e-5\nrewards: [accuracy\n"),
        "{not_utf8_yaml}": str(root / "latin1.yaml"),
        # pipelines: a bad later stage must fail before the first stage runs (it would write a dataset)
        "{pipeline_stage_type}": write(
            "p_type.yaml",
            yaml.safe_dump(
                {
                    "stages": [
                        {
                            "name": "data",
                            "command": "cold-start-data",
                            "config": {"task": "gym:chain_sum", "task_size": 4},
                        },
                        {"name": "train", "command": "grpo", "config": {"learning_rate": "fast"}},
                    ]
                }
            ),
        ),
        "{pipeline_stage_reward}": write(
            "p_reward.yaml",
            yaml.safe_dump(
                {
                    "stages": [
                        {
                            "name": "data",
                            "command": "cold-start-data",
                            "config": {"task": "gym:chain_sum", "task_size": 4},
                        },
                        {"name": "train", "command": "grpo", "config": {"rewards": ["accuracy", "xml.sfot_format"]}},
                    ]
                }
            ),
        ),
        "{pipeline_stage_template}": write(
            "p_template.yaml",
            yaml.safe_dump(
                {
                    "stages": [
                        {
                            "name": "data",
                            "command": "cold-start-data",
                            "config": {"task": "gym:chain_sum", "task_size": 4},
                        },
                        {"name": "eval", "command": "eval", "config": {"template": "json"}},
                    ]
                }
            ),
        ),
        "{pipeline_stage_task}": write(
            "p_task.yaml",
            yaml.safe_dump(
                {
                    "stages": [
                        {
                            "name": "data",
                            "command": "cold-start-data",
                            "config": {"task": "gym:chain_sum", "task_size": 4},
                        },
                        {"name": "sft", "command": "sft", "config": {"task": "gsm9k"}},
                    ]
                }
            ),
        ),
        "{pipeline_stage_command}": write(
            "p_command.yaml",
            yaml.safe_dump(
                {
                    "stages": [
                        {"name": "data", "command": "cold-start-data", "config": {}},
                        {"name": "x", "command": "trian", "config": {}},
                    ]
                }
            ),
        ),
        "{pipeline_stage_missing_config}": write(
            "p_missing.yaml",
            yaml.safe_dump(
                {"stages": [{"name": "data", "command": "cold-start-data", "config": "no_such_recipe.yaml"}]}
            ),
        ),
        "{pipeline_ok}": write(
            "p_ok.yaml",
            yaml.safe_dump(
                {
                    "stages": [
                        {
                            "name": "data",
                            "command": "cold-start-data",
                            "config": {"task": "gym:chain_sum", "task_size": 4},
                        }
                    ]
                }
            ),
        ),
        "{bad_manifest_run}": str(root / "bad_manifest_run"),
        "{summary_ok}": write("eval_ok/summary.json", json.dumps({"pass_at_1": 0.5, "k": 1})),
        "{summary_bad}": write("eval_bad/summary.json", '{"pass_at_1": 0.5,\n'),
        "{checkpoint_incomplete}": str(root / "train" / "checkpoint-3"),
        "{stage_dir}": write(
            "stage/metrics.jsonl", _jsonl([{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}])
        ).rsplit("/", 1)[0],
    }
    write("bad_gsm8k/train.jsonl", _jsonl([GSM8K_ROW, GSM8K_ROW]) + '{"question": "q" "answer": "#### 1"}\n')
    write("empty_gsm8k/train.jsonl", "\n")
    write(
        "words_gsm8k/train.jsonl", _jsonl([GSM8K_ROW, {"question": "How many?", "answer": "Count them.\n#### seven"}])
    )
    write("words_gsm8k/test.jsonl", _jsonl([GSM8K_ROW, {"question": "How many?", "answer": "Count them.\n#### seven"}]))
    (root / "latin1.yaml").write_bytes("model: caf\xe9\n".encode("latin-1"))
    (root / "empty_run").mkdir()
    write("bad_manifest_run/manifest.json", '{"name": "x", "stages": [\n')
    write("train/checkpoint-3/model.safetensors", "")  # cut off before trainer_state.json was written
    return places


# (id, argv with placeholders, text the one error line must contain). Grouped by kind of fault.
MISSING_FILES = [
    ("grpo-missing-config", ["grpo", "--config", "{missing}"], "config file not found"),
    ("grpo-missing-dataset", ["grpo", "--task", "jsonl", "--dataset", "{missing}"], "dataset not found"),
    (
        "grpo-missing-checkpoint",
        ["grpo", "--model", "{model}", *CHAIN_SUM, "--resume_from_checkpoint", "{missing_dir}"],
        "no such checkpoint directory",
    ),
    (
        "grpo-incomplete-checkpoint",
        ["grpo", "--model", "{model}", *CHAIN_SUM, "--resume_from_checkpoint", "{checkpoint_incomplete}"],
        "is incomplete (trainer_state.json missing or cut off",
    ),
    ("sft-missing-train-file", ["sft", "--model", "{model}", "--train_file", "{missing}"], "train_file not found"),
    ("sft-missing-model", ["sft", *CHAIN_SUM, "--model", "{missing_dir}/model"], "model not found"),
    (
        "distill-missing-teacher",
        ["distill", *CHAIN_SUM, "--model", "{model}", "--teacher", "./no/such/teacher"],
        "model not found",
    ),
    (
        "distill-missing-train-file",
        ["distill", "--model", "{model}", "--train_file", "{missing}"],
        "train_file not found",
    ),
    ("eval-missing-dataset", ["eval", "--task", "gsm8k", "--dataset", "{missing_dir}"], "dataset not found"),
    ("eval-missing-model", ["eval", *CHAIN_SUM, "--model", "./no/such/model"], "model not found"),
    ("eval-compare-missing-summary", ["eval", "--compare", "{summary_ok}", "{missing}"], "summary.json not found"),
    (
        "cold-start-missing-completions",
        ["cold-start-data", *CHAIN_SUM, "--source", "zero", "--completions_file", "{missing}"],
        "completions_file not found",
    ),
    (
        "rejection-missing-general-file",
        ["rejection-sampling", *CHAIN_SUM, "--general_file", "{missing}", "--general_ratio", "0.5"],
        "general_file not found",
    ),
    ("rejection-missing-model", ["rejection-sampling", *CHAIN_SUM, "--model", "./no/such/model"], "model not found"),
    ("pipeline-missing-config", ["pipeline", "--config", "{missing}"], "config file not found"),
    (
        "pipeline-missing-stage-config",
        ["pipeline", "--config", "{pipeline_stage_missing_config}"],
        "config file not found",
    ),
    ("report-missing-run-dir", ["report", "{missing_dir}"], "not a directory"),
    ("status-missing-run-dir", ["status", "{missing_dir}"], "no manifest.json in"),
]
MALFORMED = [
    ("grpo-malformed-jsonl", ["grpo", "--task", "jsonl", "--dataset", "{bad_qa}"], "{bad_qa}:2: malformed JSON line"),
    (
        "grpo-jsonl-not-objects",
        ["grpo", "--task", "jsonl", "--dataset", "{not_objects}"],
        "{not_objects}:2: expected a JSON object",
    ),
    (
        "grpo-malformed-gsm8k-split",
        ["grpo", "--task", "gsm8k", "--dataset", "{bad_gsm8k}"],
        "train.jsonl:3: malformed JSON line",
    ),
    (
        "sft-malformed-train-file",
        ["sft", "--model", "{model}", "--train_file", "{bad_chat}"],
        "{bad_chat}:2: malformed JSON line",
    ),
    (
        "distill-malformed-train-file",
        ["distill", "--model", "{model}", "--train_file", "{bad_chat}"],
        "{bad_chat}:2: malformed JSON line",
    ),
    ("eval-malformed-dataset", ["eval", "--task", "jsonl", "--dataset", "{bad_qa}"], "{bad_qa}:2: malformed JSON line"),
    (
        "cold-start-malformed-completions",
        ["cold-start-data", *CHAIN_SUM, "--source", "zero", "--completions_file", "{bad_zero}"],
        "{bad_zero}:2: malformed JSON line",
    ),
    (
        "cold-start-malformed-gsm8k",
        ["cold-start-data", "--task", "gsm8k", "--dataset", "{bad_gsm8k}"],
        "train.jsonl:3: malformed JSON line",
    ),
    (
        "rejection-malformed-general-file",
        ["rejection-sampling", *CHAIN_SUM, "--general_file", "{bad_chat}", "--general_ratio", "0.5"],
        "{bad_chat}:2: malformed JSON line",
    ),
    ("pipeline-broken-yaml", ["pipeline", "--config", "{broken_yaml}"], "{broken_yaml}:3: broken YAML"),
    ("grpo-yaml-not-utf8", ["grpo", "--config", "{not_utf8_yaml}"], "cannot read config file"),
    ("status-malformed-manifest", ["status", "{bad_manifest_run}"], "line 2"),
    ("report-malformed-manifest", ["report", "{bad_manifest_run}"], "line 2"),
    (
        "pipeline-resume-malformed-manifest",
        ["pipeline", "--config", "{pipeline_ok}", "--run_dir", "{bad_manifest_run}", "--resume", "true"],
        "line 2",
    ),
    ("eval-compare-malformed-summary", ["eval", "--compare", "{summary_ok}", "{summary_bad}"], "not valid JSON"),
]
EMPTY = [
    ("grpo-empty-dataset", ["grpo", "--task", "jsonl", "--dataset", "{empty}"], "is empty"),
    ("grpo-blank-lines-dataset", ["grpo", "--task", "jsonl", "--dataset", "{blank}"], "is empty"),
    ("grpo-empty-gsm8k-split", ["grpo", "--task", "gsm8k", "--dataset", "{empty_gsm8k}"], "is empty"),
    ("sft-empty-train-file", ["sft", "--model", "{model}", "--train_file", "{empty}"], "has no samples"),
    ("distill-empty-train-file", ["distill", "--model", "{model}", "--train_file", "{empty}"], "has no samples"),
    ("eval-empty-dataset", ["eval", "--task", "jsonl", "--dataset", "{blank}"], "is empty"),
    (
        "cold-start-empty-completions",
        ["cold-start-data", *CHAIN_SUM, "--source", "zero", "--completions_file", "{empty}"],
        "is empty",
    ),
    (
        "rejection-empty-general-file",
        ["rejection-sampling", *CHAIN_SUM, "--general_file", "{blank}", "--general_ratio", "0.5"],
        "has no samples",
    ),
    ("pipeline-no-stages", ["pipeline", "--stages", "[]"], "pipeline has no stages"),
    ("report-empty-dir", ["report", "{empty_run}"], "nothing to report"),
]
NON_NUMERIC_GOLD = [
    (
        "grpo-gsm8k-word-gold",
        ["grpo", "--task", "gsm8k", "--dataset", "{words_gsm8k}"],
        "row 2: the final answer after '####' is not a number: 'seven'",
    ),
    (
        "sft-gsm8k-word-gold",
        ["sft", "--model", "{model}", "--task", "gsm8k", "--dataset", "{words_gsm8k}"],
        "is not a number: 'seven'",
    ),
    ("eval-gsm8k-word-gold", ["eval", "--task", "gsm8k", "--dataset", "{words_gsm8k}"], "is not a number: 'seven'"),
    (
        "cold-start-gsm8k-word-gold",
        ["cold-start-data", "--task", "gsm8k", "--dataset", "{words_gsm8k}"],
        "is not a number: 'seven'",
    ),
    (
        "rejection-gsm8k-word-gold",
        ["rejection-sampling", "--model", "{model}", "--task", "gsm8k", "--dataset", "{words_gsm8k}"],
        "is not a number: 'seven'",
    ),
    ("grpo-jsonl-blank-gold", ["grpo", "--task", "jsonl", "--dataset", "{blank_gold}"], "row 2: empty answer"),
]
WRONG_TYPES = [
    ("grpo-yaml-wrong-type", ["grpo", "--config", "{grpo_yaml}"], "learning_rate: expected a number, got 'fast'"),
    ("sft-yaml-wrong-type", ["sft", "--config", "{sft_yaml}"], "max_steps: expected an integer, got 'ten'"),
    ("eval-yaml-wrong-type", ["eval", "--config", "{eval_yaml}"], "k: expected an integer"),
    ("cold-start-yaml-wrong-type", ["cold-start-data", "--config", "{cold_yaml}"], "filters: expected a mapping"),
    (
        "rejection-yaml-wrong-type",
        ["rejection-sampling", "--config", "{rejection_yaml}"],
        "general_ratio: expected a number",
    ),
    ("report-yaml-wrong-type", ["report", "--config", "{report_yaml}"], "samples_per_phase: expected an integer"),
    ("status-yaml-wrong-type", ["status", "--config", "{status_yaml}"], "run_dir: expected a string"),
    ("pipeline-yaml-wrong-type", ["pipeline", "--config", "{pipeline_yaml}"], "stages: expected a list"),
    ("pipeline-stage-wrong-type", ["pipeline", "--config", "{pipeline_stage_type}"], "stage 'train'"),
    ("bench-wrong-type", ["bench", "--steps", "many"], "steps: expected an integer"),
    ("yaml-not-a-mapping", ["grpo", "--config", "{list_yaml}"], "a config must be a mapping"),
    ("grpo-bool-expected", ["grpo", "--use_peft", "maybe"], "use_peft: expected true or false"),
]
UNKNOWN_NAMES = [
    ("unknown-command", ["trian"], "unknown command 'trian'"),
    ("grpo-unknown-task", ["grpo", "--task", "gsm9k"], "unknown task 'gsm9k'"),
    (
        "grpo-unknown-reward",
        ["grpo", *CHAIN_SUM, "--rewards", "accuracy,xml.sfot_format"],
        "unknown reward 'xml.sfot_format'",
    ),
    ("grpo-unknown-template", ["grpo", *CHAIN_SUM, "--template", "json"], "unknown template 'json'"),
    (
        "grpo-unknown-attention",
        ["grpo", "--model", "{model}", *CHAIN_SUM, "--attn_implementation", "nope"],
        'attn_implementation="nope"` is not supported',
    ),
    (
        "sft-unknown-task",
        ["sft", "--model", "{model}", "--task", "gym:chain_summ"],
        "unknown reasoning-gym task 'chain_summ'",
    ),
    (
        "sft-unknown-template",
        ["sft", "--model", "{model}", *CHAIN_SUM, "--template", "json"],
        "unknown template 'json'",
    ),
    (
        "distill-unknown-method",
        ["distill", "--model", "{model}", "--teacher", "{model}", *CHAIN_SUM, "--method", "kd"],
        "method must be one of sft, on_policy",
    ),
    ("eval-unknown-task", ["eval", "--task", "gsm9k"], "unknown task 'gsm9k'"),
    ("eval-unknown-template", ["eval", *CHAIN_SUM, "--template", "json"], "unknown template 'json'"),
    (
        "eval-unknown-backend",
        ["eval", *CHAIN_SUM, "--backend", "tpu"],
        "backend must be one of auto, hf, vllm, got 'tpu'",
    ),
    ("cold-start-unknown-task", ["cold-start-data", "--task", "gsm9k"], "unknown task 'gsm9k'"),
    ("cold-start-unknown-template", ["cold-start-data", *CHAIN_SUM, "--template", "json"], "unknown template 'json'"),
    (
        "cold-start-unknown-source",
        ["cold-start-data", *CHAIN_SUM, "--source", "web"],
        "source must be one of solutions, zero, fewshot, got 'web'",
    ),
    ("rejection-unknown-task", ["rejection-sampling", "--task", "gsm9k"], "unknown task 'gsm9k'"),
    ("rejection-unknown-template", ["rejection-sampling", *CHAIN_SUM, "--template", "json"], "unknown template 'json'"),
    ("pipeline-unknown-stage-command", ["pipeline", "--config", "{pipeline_stage_command}"], "unknown command 'trian'"),
    (
        "pipeline-unknown-reward-in-a-later-stage",
        ["pipeline", "--config", "{pipeline_stage_reward}"],
        "stage 'train': unknown reward 'xml.sfot_format'",
    ),
    (
        "pipeline-unknown-template-in-a-later-stage",
        ["pipeline", "--config", "{pipeline_stage_template}"],
        "stage 'eval': unknown template 'json'",
    ),
    (
        "pipeline-unknown-task-in-a-later-stage",
        ["pipeline", "--config", "{pipeline_stage_task}"],
        "stage 'sft': unknown task 'gsm9k'",
    ),
    ("bench-unknown-target", ["bench", "nope"], "unknown target 'nope'"),
    ("unknown-key", ["report", "{empty_run}", "--sample_per_phase", "2"], "did you mean samples_per_phase?"),
]
UNWRITABLE = [
    ("grpo-output-under-a-file", ["grpo", *CHAIN_SUM, "--output_dir", "{file}/out"], "is a file, not a directory"),
    (
        "sft-output-under-a-file",
        ["sft", "--model", "{model}", *CHAIN_SUM, "--output_dir", "{file}/out"],
        "is a file, not a directory",
    ),
    (
        "sft-output-is-a-file",
        ["sft", "--model", "{model}", *CHAIN_SUM, "--output_dir", "{file}"],
        "exists and is not a directory",
    ),
    (
        "distill-output-under-a-file",
        ["distill", "--model", "{model}", "--teacher", "{model}", *CHAIN_SUM, "--output_dir", "{file}/out"],
        "is a file, not a directory",
    ),
    ("eval-output-under-a-file", ["eval", *CHAIN_SUM, "--output_dir", "{file}/out"], "is a file, not a directory"),
    (
        "cold-start-dir-under-a-file",
        ["cold-start-data", *CHAIN_SUM, "--output", "{file}/data"],
        "is a file, not a directory",
    ),
    (
        "cold-start-jsonl-under-a-file",
        ["cold-start-data", *CHAIN_SUM, "--output", "{file}/data.jsonl"],
        "is a file, not a directory",
    ),
    (
        "rejection-output-under-a-file",
        ["rejection-sampling", "--model", "{model}", *CHAIN_SUM, "--output", "{file}/data"],
        "is a file, not a directory",
    ),
    (
        "pipeline-run-dir-under-a-file",
        ["pipeline", "--config", "{pipeline_ok}", "--run_dir", "{file}/run"],
        "is a file, not a directory",
    ),
    (
        "report-output-under-a-file",
        ["report", "{stage_dir}", "--output", "{file}/report.html"],
        "is a file, not a directory",
    ),
    ("report-output-is-a-directory", ["report", "{stage_dir}", "--output", "{empty_run}"], "is a directory"),
]
CASES = MISSING_FILES + MALFORMED + EMPTY + NON_NUMERIC_GOLD + WRONG_TYPES + UNKNOWN_NAMES + UNWRITABLE


def fill(items: list[str], places: dict[str, str]) -> list[str]:
    filled = []
    for item in items:
        for placeholder, value in places.items():
            item = item.replace(placeholder, value)
        filled.append(item)
    return filled


def snapshot(root) -> dict[str, tuple]:
    """Every directory and file under ``root`` with its content hash and modification time."""
    state = {}
    for folder, directories, files in os.walk(root):
        for name in directories:
            state[os.path.relpath(os.path.join(folder, name), root)] = ("dir",)
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            state[os.path.relpath(path, root)] = (digest, os.stat(path).st_mtime_ns)
    return state


def assert_one_error_line(stderr: str, expected: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("r1lab: error: "), lines[0]
    assert expected in lines[0], f"{expected!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("argv, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(argv, expected, workdir, tiny_model_dir, capsys):
    places = make_inputs(workdir, tiny_model_dir)
    before = snapshot(workdir)
    code = cli_main(fill(argv, places))
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert_one_error_line(captured.err, fill([expected], places)[0])
    assert "Traceback" not in captured.out
    assert snapshot(workdir) == before  # nothing created, nothing changed


def test_the_battery_covers_every_command_and_every_kind_of_fault():
    commands = {case[1][0] for case in CASES}
    assert set(COMMANDS) <= commands, f"no bad-input case for {set(COMMANDS) - commands}"
    for group in (MISSING_FILES, MALFORMED, EMPTY, WRONG_TYPES, UNKNOWN_NAMES, UNWRITABLE):
        assert len({case[1][0] for case in group}) >= 5
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


def _permission_bits_apply(folder) -> bool:
    """Whether this process is stopped by a read-only directory (root, with CAP_DAC_OVERRIDE, is not)."""
    probe = folder / "read-only-probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "file").write_text("x")
        return False
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
        shutil.rmtree(probe)


@pytest.mark.parametrize(
    "argv",
    [
        ["grpo", *CHAIN_SUM, "--output_dir", "{locked}/out"],
        ["cold-start-data", *CHAIN_SUM, "--output", "{locked}/data.jsonl"],
        ["pipeline", "--config", "{pipeline_ok}", "--run_dir", "{locked}/run"],
    ],
    ids=["grpo", "cold-start-data", "pipeline"],
)
def test_read_only_output_directory(argv, workdir, capsys):
    if not _permission_bits_apply(workdir):
        pytest.skip("permission bits do not stop this user (root)")
    places = make_inputs(workdir, "no-model-needed")
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = cli_main(fill(argv, {**places, "{locked}": str(locked)}))
    finally:
        locked.chmod(0o755)
    assert code == 2
    assert_one_error_line(capsys.readouterr().err, "is not writable")
    assert list(locked.iterdir()) == []


# ------------------------------------------------------------------------------------------------------------
# Settings no run can use: refused before any model loads
# ------------------------------------------------------------------------------------------------------------
class ModelLoaded(BaseException):
    """Raised by a patched from_pretrained: no r1lab handler catches it, so it fails the test."""


VALIDATED_BEFORE_LOADING = [
    (
        "grpo-generation-batch-not-divisible",
        ["grpo", "--num_generations", "3", "--generation_batch_size", "16"],
        "divisible by num_generations (3)",
    ),
    (
        "grpo-completion-above-context",
        ["grpo", "--max_completion_length", "5000"],
        "exceeds the model's context of 1024 tokens",
    ),
    ("grpo-one-generation", ["grpo", "--num_generations", "1"], "at least 2 generations"),
    ("grpo-zero-generations", ["grpo", "--num_generations", "0"], "at least 2 generations"),
    (
        "grpo-negative-resample-rounds",
        ["grpo", "--dynamic_sampling", "true", "--max_resample_rounds", "-1"],
        "max_resample_rounds must be at least 0",
    ),
    ("grpo-negative-learning-rate", ["grpo", "--learning_rate", "-1e-5"], "learning_rate must be at least 0"),
    (
        "grpo-zero-batch",
        ["grpo", "--per_device_train_batch_size", "0"],
        "per_device_train_batch_size must be at least 1",
    ),
    (
        "grpo-zero-accumulation",
        ["grpo", "--gradient_accumulation_steps", "0"],
        "gradient_accumulation_steps must be at least 1",
    ),
    ("grpo-zero-max-steps", ["grpo", "--max_steps", "0"], "max_steps 0 trains nothing"),
    ("grpo-zero-save-steps", ["grpo", "--save_steps", "0"], "save_steps must be above 0"),
    ("grpo-zero-temperature", ["grpo", "--temperature", "0"], "temperature must be above 0"),
    ("grpo-top-p-above-1", ["grpo", "--top_p", "1.5"], "top_p must be in (0, 1]"),
    ("grpo-negative-seed", ["grpo", "--seed", "-1"], "seed must be at least 0"),
    (
        "grpo-zero-completion-length",
        ["grpo", "--max_completion_length", "0"],
        "max_completion_length must be at least 1",
    ),
    (
        "grpo-null-completion-length",
        ["grpo", "--max_completion_length", "null"],
        "max_completion_length must be a number of tokens",
    ),
    ("grpo-lora-rank-0", ["grpo", "--use_peft", "true", "--lora_r", "0"], "lora_r must be at least 1"),
    ("grpo-final-eval-bad-setting", ["grpo", "--final_eval", "{k: 0}"], "k must be at least 1"),
    ("grpo-final-eval-unknown-key", ["grpo", "--final_eval", "{limt: 3}"], "did you mean limit?"),
    ("grpo-resume-from-finished", ["grpo", "--resume", "true", "--output_dir", "{finished}"], "nothing to resume"),
    (
        "sft-max-length-above-context",
        ["sft", "--max_length", "4096"],
        "max_length 4096 exceeds the model's context of 1024",
    ),
    ("sft-packing-without-length", ["sft", "--packing", "true", "--max_length", "null"], "packing needs max_length"),
    ("sft-every-sample-too-long", ["sft", "--max_length", "8"], "every sample is longer than max_length=8"),
    (
        "eval-new-tokens-above-context",
        ["eval", "--max_new_tokens", "1020"],
        "exceeds the model's context of 1024 tokens",
    ),
    ("eval-zero-k", ["eval", "--k", "0"], "k must be at least 1"),
    ("eval-top-p-zero", ["eval", "--top_p", "0"], "top_p must be in (0, 1]"),
    (
        "cold-start-fewshot-zero-samples",
        ["cold-start-data", "--source", "fewshot", "--num_samples", "0"],
        "num_samples must be at least 1",
    ),
    (
        "rejection-negative-temperature",
        ["rejection-sampling", "--temperature", "-1"],
        "temperature must be at least 0.0",
    ),
    ("rejection-ratio-without-file", ["rejection-sampling", "--general_ratio", "0.5"], "needs general_file"),
    # vLLM settings no run can use (on this CPU-only machine; whether vLLM is installed or not)
    (
        "grpo-vllm-server-on-a-cpu",
        ["grpo", "--use_vllm", "true", "--vllm_mode", "server"],
        "vllm_mode server needs CUDA GPUs",
    ),
    (
        "grpo-vllm-sleep-mode-on-a-cpu",
        ["grpo", "--use_vllm", "true", "--vllm_enable_sleep_mode", "true"],
        "vllm_enable_sleep_mode needs a GPU",
    ),
    (
        "grpo-vllm-tensor-parallel-on-a-cpu",
        ["grpo", "--use_vllm", "true", "--vllm_tensor_parallel_size", "2"],
        "vllm_tensor_parallel_size 2 needs GPUs",
    ),
    (
        "grpo-vllm-context-too-short",
        ["grpo", "--use_vllm", "true", "--vllm_max_model_length", "64"],
        "vllm_max_model_length 64 is shorter than max_prompt_length + max_completion_length",
    ),
    (
        "grpo-vllm-and-continuous-batching",
        ["grpo", "--use_vllm", "true", "--use_transformers_continuous_batching", "true"],
        "choose one",
    ),
    (
        "grpo-vllm-unknown-mode",
        ["grpo", "--use_vllm", "true", "--vllm_mode", "remote"],
        "vllm_mode must be colocate or server",
    ),
]
# vLLM asked for where it is not installed (CI, the main .venv): refused before the model loads.
WITHOUT_VLLM = [
    ("grpo-use-vllm-not-installed", ["grpo", "--use_vllm", "true"], "use_vllm: vLLM is not installed"),
    ("eval-backend-vllm-not-installed", ["eval", "--backend", "vllm"], "backend vllm: vLLM is not installed"),
    (
        "rejection-backend-vllm-not-installed",
        ["rejection-sampling", "--generation_backend", "vllm"],
        "generation_backend vllm: vLLM is not installed",
    ),
    (
        "cold-start-fewshot-backend-vllm-not-installed",
        ["cold-start-data", "--source", "fewshot", "--generation_backend", "vllm"],
        "generation_backend vllm: vLLM is not installed",
    ),
]
OUTPUT_FLAG = {"cold-start-data": "--output", "rejection-sampling": "--output"}


@pytest.mark.parametrize(
    "argv, expected",
    [case[1:] for case in VALIDATED_BEFORE_LOADING],
    ids=[case[0] for case in VALIDATED_BEFORE_LOADING],
)
def test_settings_no_run_can_use_are_refused_before_the_model_loads(
    argv, expected, workdir, tiny_model_dir, capsys, monkeypatch
):
    assert_refused_before_loading(argv, expected, workdir, tiny_model_dir, capsys, monkeypatch)


@pytest.mark.skipif(vllm_installed(), reason="vLLM is installed here; these cases are for a machine without it")
@pytest.mark.parametrize("argv, expected", [case[1:] for case in WITHOUT_VLLM], ids=[case[0] for case in WITHOUT_VLLM])
def test_vllm_asked_for_without_vllm_installed_is_refused_before_the_model_loads(
    argv, expected, workdir, tiny_model_dir, capsys, monkeypatch
):
    assert_refused_before_loading(argv, expected, workdir, tiny_model_dir, capsys, monkeypatch)


def assert_refused_before_loading(argv, expected, workdir, tiny_model_dir, capsys, monkeypatch):
    import transformers

    def refuse(*args, **kwargs):
        raise ModelLoaded("a model was loaded before the config was validated")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    finished = workdir / "finished"
    finished.mkdir()
    (finished / "r1lab_stage.json").write_text("{}")
    before = snapshot(workdir)
    command, rest = argv[0], argv[1:]
    output = [] if "--output_dir" in rest else [OUTPUT_FLAG.get(command, "--output_dir"), str(workdir / "out")]
    common = ["--model", tiny_model_dir, *CHAIN_SUM]
    code = cli_main([command, *common, *fill(rest, {"{finished}": str(finished)}), *output])
    assert code == 2
    assert_one_error_line(capsys.readouterr().err, expected)
    assert snapshot(workdir) == before


# ------------------------------------------------------------------------------------------------------------
# A full disk: every write refused with ENOSPC
# ------------------------------------------------------------------------------------------------------------
class _FullDiskFile:
    """A file opened for writing on a full disk: it exists, and every write fails."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(self._handle, "name", None))

    writelines = write

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False

    def __getattr__(self, name):
        return getattr(self._handle, name)


def _writing(mode: str) -> bool:
    return any(flag in mode for flag in "wax+")


@pytest.fixture
def full_disk(monkeypatch):
    """From now on every write (open, os.fdopen, os.write, safetensors) fails with ENOSPC, as on a full disk."""
    import safetensors.torch
    import transformers.modeling_utils

    real_open, real_fdopen = builtins.open, os.fdopen

    def full_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return _FullDiskFile(handle) if _writing(mode) else handle

    def full_fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return _FullDiskFile(handle) if _writing(mode) else handle

    def full_write(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_save_file(tensors, filename, metadata=None):
        # what safetensors' Rust writer reports on a full disk
        raise safetensors.SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    def arm():
        monkeypatch.setattr(builtins, "open", full_open)
        monkeypatch.setattr(os, "fdopen", full_fdopen)
        monkeypatch.setattr(os, "write", full_write)
        monkeypatch.setattr(safetensors.torch, "save_file", full_save_file)
        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full_save_file)

    return arm


def leftovers(root) -> list[str]:
    """Staging files and directories that a failed write must not leave behind."""
    found = []
    for folder, directories, files in os.walk(root):
        for name in directories + files:
            if name.startswith(".") and name != ".model-gathered":
                found.append(os.path.join(folder, name))
    return found


def assert_full_disk_refusal(code: int, capsys) -> None:
    """Exit 2 and one error line, the last thing printed (progress bars of the work done before may precede it)."""
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "r1lab: error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert errors[0].startswith("r1lab: error: no space left on the device"), errors[0]


def test_full_disk_cold_start_data_keeps_the_earlier_dataset(workdir, full_disk, capsys):
    for output in ("data", "data.jsonl"):  # a directory (with a finish marker) and a single file
        assert cli_main(["cold-start-data", *CHAIN_SUM, "--output", output]) == 0
    capsys.readouterr()
    before = snapshot(workdir)
    full_disk()
    for output in ("data", "data.jsonl"):
        assert_full_disk_refusal(
            cli_main(["cold-start-data", *CHAIN_SUM, "--task_size", "6", "--output", output, "--overwrite", "true"]),
            capsys,
        )
    assert snapshot(workdir) == before
    assert leftovers(workdir) == []


def test_full_disk_eval_keeps_the_earlier_eval(workdir, tiny_model_dir, full_disk, capsys):
    run = [
        "eval",
        "--model",
        tiny_model_dir,
        *CHAIN_SUM,
        "--limit",
        "2",
        "--max_new_tokens",
        "4",
        "--progress",
        "false",
        "--output_dir",
        "ev",
    ]
    assert cli_main(run) == 0
    capsys.readouterr()
    before = snapshot(workdir)
    full_disk()
    assert_full_disk_refusal(cli_main([*run, "--overwrite", "true"]), capsys)
    assert snapshot(workdir) == before
    assert leftovers(workdir) == []


def test_full_disk_report_and_pipeline_keep_what_was_saved(workdir, tiny_model_dir, full_disk, capsys):
    recipe = workdir / "pipeline.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "stages": [
                    {"name": "data", "command": "cold-start-data", "config": {"task": "gym:chain_sum", "task_size": 4}},
                    {"name": "report", "command": "report"},
                ]
            }
        )
    )
    stage = workdir / "stage"
    stage.mkdir()
    (stage / "metrics.jsonl").write_text(
        _jsonl([{"step": 1, "loss": 1.0, "reward": 0.5}, {"step": 2, "loss": 0.5, "reward": 0.75}])
    )
    assert cli_main(["report", str(stage)]) == 0
    capsys.readouterr()
    before = snapshot(workdir)
    full_disk()
    assert_full_disk_refusal(cli_main(["report", str(stage)]), capsys)
    assert_full_disk_refusal(cli_main(["pipeline", "--config", str(recipe), "--run_dir", "run"]), capsys)
    after = snapshot(workdir)
    assert {path: state for path, state in after.items() if path in before} == before
    assert all(state == ("dir",) for path, state in after.items() if path not in before)  # at most empty folders
    assert leftovers(workdir) == []


@pytest.mark.parametrize("command", ["grpo", "sft"])
def test_full_disk_while_training_leaves_no_stage_that_looks_finished(
    command, workdir, tiny_model_dir, full_disk, capsys
):
    """The disk fills up during training (the first metrics line, or the model save): one line, and the output
    directory holds no finish marker, no half-saved model, no staging directory."""
    run = [
        command,
        "--model",
        tiny_model_dir,
        *CHAIN_SUM,
        "--max_steps",
        "1",
        "--per_device_train_batch_size",
        "4",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--output_dir",
        "out",
    ]
    if command == "grpo":
        run += ["--num_generations", "4", "--max_completion_length", "8", "--rewards", "xml.soft_format"]
    (workdir / "keep.txt").write_text("saved earlier")
    full_disk()
    assert_full_disk_refusal(cli_main(run), capsys)
    out = workdir / "out"
    assert not (out / "r1lab_stage.json").exists() and not (out / "model.safetensors").exists()
    assert leftovers(workdir) == []
    assert (workdir / "keep.txt").read_text() == "saved earlier"


def test_full_disk_at_the_model_save_reports_one_line(workdir, tiny_model_dir, monkeypatch, capsys):
    """Training itself succeeds; only the final save hits the full disk (as safetensors reports it)."""
    import safetensors
    import transformers.modeling_utils

    def full(*args, **kwargs):
        raise safetensors.SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full)
    run = [
        "sft",
        "--model",
        tiny_model_dir,
        *CHAIN_SUM,
        "--max_steps",
        "1",
        "--per_device_train_batch_size",
        "4",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--output_dir",
        "out",
    ]
    assert_full_disk_refusal(cli_main(run), capsys)
    out = workdir / "out"
    assert (out / "metrics.jsonl").exists()  # training ran
    assert not (out / "r1lab_stage.json").exists() and not (out / "model.safetensors").exists()
    assert leftovers(workdir) == []


# ------------------------------------------------------------------------------------------------------------
# Finished outputs are refused, not replaced, without --overwrite
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["grpo", "--model", "{model}", *CHAIN_SUM, "--output_dir", "done"],
        ["sft", "--model", "{model}", *CHAIN_SUM, "--output_dir", "done"],
        ["eval", "--model", "{model}", *CHAIN_SUM, "--output_dir", "done"],
        ["cold-start-data", *CHAIN_SUM, "--output", "done"],
        ["rejection-sampling", "--model", "{model}", *CHAIN_SUM, "--output", "done"],
        ["pipeline", "--config", "{pipeline_ok}", "--run_dir", "done"],
    ],
    ids=["grpo", "sft", "eval", "cold-start-data", "rejection-sampling", "pipeline"],
)
def test_a_finished_output_is_refused_and_left_as_it_was(argv, workdir, tiny_model_dir, capsys):
    places = make_inputs(workdir, tiny_model_dir)
    done = workdir / "done"
    done.mkdir()
    for name in ("r1lab_stage.json", "summary.json", "manifest.json"):  # the finish marks of every kind of output
        (done / name).write_text(json.dumps({"stage": "x", "stages": [], "pass_at_1": 0.5}))
    (done / "model.safetensors").write_bytes(b"weights")
    before = snapshot(workdir)
    assert cli_main(fill(argv, places)) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err or "--resume" in err
    assert snapshot(workdir) == before
