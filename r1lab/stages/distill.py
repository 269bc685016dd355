"""Distillation (DeepSeek-R1 §2.4): a small student learns a stronger teacher's reasoning.

``method: sft`` (R1's way, the default): the teacher samples ``num_samples`` completions per question of the task,
the verified, readable ones are kept (``r1lab rejection-sampling`` with no general data, into
``<output_dir>/teacher-samples``), and the student (``model``) is SFT-trained on them exactly as ``r1lab sft``
trains (loss on the teacher's completion only). With ``train_file`` the traces come from a file and no teacher
runs. A finished ``teacher-samples`` directory is reused unless ``overwrite`` is set, so a rerun after a failed SFT
does not sample again.

``method: on_policy``: the student samples its own completions of the task's prompts and is trained towards the
teacher's next-token distributions on them (TRL's DistillationTrainer, generalized Jensen-Shannon divergence with
``jsd_beta``: 0 forward KL, 0.5 JSD, 1 reverse KL). The teacher's logits score the student's tokens, so both
must share one vocabulary: a mismatch is refused before anything loads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from datasets import Dataset
from trl import DistillationConfig, DistillationTrainer

from r1lab.config import check_declared, config_to_dict, setting
from r1lab.distributed import is_main_process, wait_for_everyone
from r1lab.errors import UserError
from r1lab.models import ModelDtype, load_model, load_tokenizer, resolve_model
from r1lab.outputs import check_output_dir, is_finished, write_stage_marker
from r1lab.stages import rejection, sft
from r1lab.stages.rejection import RejectionSamplingConfig, validate
from r1lab.stages.sft import R1SFTConfig
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template
from r1lab.training.checkpoints import resolve_resume
from r1lab.training.stage import run_training_stage

logger = logging.getLogger("r1lab")

TEACHER_SAMPLES = "teacher-samples"
# Rejection sampling's name for a setting -> distill's: its errors name the field the user actually set.
TEACHER_FIELDS = {
    "max_new_tokens": "teacher_max_new_tokens",
    "temperature": "teacher_temperature",
    "top_p": "teacher_top_p",
    "batch_size": "teacher_batch_size",
    "model_dtype": "teacher_dtype",
}


@dataclass
class R1DistillConfig(R1SFTConfig):
    """The student's SFT (``model`` is the student) plus the teacher and how its traces are drawn (``--help``)."""

    teacher: str | None = setting(None, "The model whose reasoning is distilled; none with train_file (method sft).")
    teacher_dtype: ModelDtype = setting("auto", "The teacher's weights' dtype (as model_dtype).")
    method: Literal["sft", "on_policy"] = setting(
        "sft", "sft: SFT on the teacher's verified traces (R1); on_policy: teacher logits on student samples."
    )
    num_samples: int = setting(4, "Teacher completions per question (method sft).", minimum=1)
    teacher_temperature: float = setting(0.6, "The teacher's sampling temperature (method sft).", minimum=0.0)
    teacher_top_p: float = setting(0.95, "The teacher's nucleus sampling top_p (method sft).", minimum=0.0, maximum=1.0)
    teacher_max_new_tokens: int = setting(512, "Also the student's completion length with method on_policy.", minimum=1)
    teacher_batch_size: int = setting(16, "Prompts the teacher decodes together.", minimum=1)
    max_per_question: int | None = setting(1, "Verified teacher traces kept per question; null: all.")
    jsd_beta: float = setting(
        0.5, "Method on_policy: 0 forward KL, 0.5 Jensen-Shannon, 1 reverse KL.", minimum=0.0, maximum=1.0
    )
    output_dir: str | None = setting("runs/distill", "Where the outputs go.")


def teacher_sampling_config(config: R1DistillConfig, output: str):
    """The rejection-sampling run that makes the teacher's traces: the task and filters of the student's config."""
    task_fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(TaskSpec)}
    assert config.teacher is not None  # check(): no teacher, no teacher's run
    return RejectionSamplingConfig(
        **task_fields,
        model=config.teacher,
        model_dtype=config.teacher_dtype,
        trust_remote_code=config.trust_remote_code,
        template=config.template,
        num_samples=config.num_samples,
        temperature=config.teacher_temperature,
        top_p=config.teacher_top_p,
        max_new_tokens=config.teacher_max_new_tokens,
        batch_size=config.teacher_batch_size,
        seed=config.seed,
        filters=dict(config.filters),
        max_per_question=config.max_per_question,
        general_ratio=0.0,
        output=output,
        overwrite=True,
        progress=not config.disable_tqdm,
    )


def check(config: R1DistillConfig) -> None:
    """The stage contract's check (commands.Command.check): the student's SFT settings, the method's, and the
    teacher's sampling settings (named as distill names them); reads no model, no samples, no input or output path."""
    check_declared(config)
    if config.method == "sft" and not config.teacher and not config.train_file:
        raise UserError("distill needs a teacher (--teacher MODEL) or its traces (--train_file FILE)")
    if config.method == "on_policy":
        if not config.teacher:
            raise UserError("method on_policy needs a teacher (--teacher MODEL): its logits are the target")
        if config.train_file:
            raise UserError("method on_policy trains on the student's own samples of the task: drop train_file")
    sft.check(config)
    if config.teacher and not config.train_file:
        with _teacher_field_names():
            rejection.check(teacher_sampling_config(config, os.path.join(config.output_dir or "", TEACHER_SAMPLES)))


@contextlib.contextmanager
def _teacher_field_names():
    """A rejection-sampling error about the teacher's run, with the field named as distill's config names it."""
    try:
        yield
    except UserError as error:
        message = str(error)
        for theirs, ours in TEACHER_FIELDS.items():
            message = re.sub(rf"\b{theirs}\b", ours, message)
        raise UserError(message) from None


def validate_distill(config: R1DistillConfig) -> None:
    """Every problem with the settings, the models and the output, before a model loads or a file is written."""
    check(config)
    assert config.output_dir is not None  # TrainingArguments.__post_init__ fills it
    check_output_dir(config.output_dir, config.overwrite, resuming=bool(resolve_resume(config)))
    resolve_model(config.model)
    if config.teacher and not config.train_file:
        with _teacher_field_names():
            validate(teacher_sampling_config(config, os.path.join(config.output_dir, TEACHER_SAMPLES)))
    if config.method == "on_policy":
        check_same_vocabulary(config)


def check_same_vocabulary(config: R1DistillConfig) -> None:
    assert config.teacher is not None  # check(): method on_policy needs one
    student, teacher = (
        load_tokenizer(config.model, config.trust_remote_code),
        load_tokenizer(config.teacher, config.trust_remote_code),
    )
    if student.get_vocab() != teacher.get_vocab():
        raise UserError(
            f"method on_policy needs one vocabulary: {config.teacher} ({len(teacher)} tokens) and the student "
            f"{config.model} ({len(student)} tokens) tokenize differently; use method sft"
        )


def teacher_traces(config: R1DistillConfig) -> tuple[str, dict[str, Any] | None]:
    """(train_file for the student, the teacher run's figures or None when reused/supplied)."""
    if config.train_file:
        return config.train_file, None
    assert config.output_dir is not None  # TrainingArguments.__post_init__ fills it
    output = os.path.join(config.output_dir, TEACHER_SAMPLES)
    if is_finished(output) and not config.overwrite:
        logger.info("r1lab: reusing the teacher's traces in %s (--overwrite true samples them again)", output)
        return output, None
    figures = rejection.main(teacher_sampling_config(config, output)) if is_main_process() else None
    wait_for_everyone()
    return output, figures


def main(config: R1DistillConfig) -> dict[str, Any]:
    started = time.time()
    validate_distill(config)
    if config.method == "on_policy":
        figures = on_policy(config, started)
    else:
        config.train_file, teacher_figures = teacher_traces(config)
        figures = sft.main(config)
        figures["teacher"] = teacher_figures
    if is_main_process():
        assert config.output_dir is not None  # TrainingArguments.__post_init__ fills it
        write_stage_marker(config.output_dir, "distill", config_to_dict(config), started, figures)
    return figures


def on_policy(config: R1DistillConfig, started: float) -> dict[str, Any]:
    """TRL's DistillationTrainer: the student's samples of the task's prompts, scored by the teacher's logits."""
    task, template = get_task(config), get_template(config.template)
    prompts = [{"prompt": task.prompt(row["question"], template)} for row in task.load()]
    known = {f.name for f in dataclasses.fields(DistillationConfig) if f.init}
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init and f.name in known}
    shared.update(
        beta=config.jsd_beta,
        teacher_model_name_or_path=None,
        max_completion_length=config.teacher_max_new_tokens,
        temperature=config.teacher_temperature,
        top_p=config.teacher_top_p,
        remove_unused_columns=False,
    )
    arguments = DistillationConfig(**shared)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    tokenizer.padding_side = "left"

    def build_trainer(callbacks: list) -> DistillationTrainer:
        # TRL's config __post_init__ decides bf16; check(): method on_policy needs a teacher
        assert config.bf16 is not None and config.teacher is not None
        student = load_model(
            config.model,
            config.model_dtype,
            config.bf16,
            config.trust_remote_code,
            config.attn_implementation,
            training=True,
        )
        teacher = load_model(
            config.teacher,
            config.teacher_dtype,
            config.bf16,
            config.trust_remote_code,
            config.attn_implementation,
            training=True,
        )  # runs under the student's autocast
        return DistillationTrainer(
            model=student,
            teacher_model=teacher,
            args=arguments,
            train_dataset=Dataset.from_list(prompts),
            processing_class=tokenizer,
            callbacks=callbacks,
        )

    # distill's main writes the stage marker (for both methods)
    return run_training_stage(
        config,
        "distill",
        build_trainer,
        tokenizer,
        started=started,
        figures=lambda: {"train_prompts": len(prompts)},
        write_marker=False,
    )
