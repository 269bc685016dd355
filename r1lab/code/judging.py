"""One program against its problem's tests, in a sandbox → a :class:`TestReport`.

- stdio problems: the program runs once per case with the case's input on stdin; r1lab compares stdout with
  :func:`~r1lab.code.problems.outputs_match`, outside the program's reach.
- assert problems: the local sandbox's judged run (the tests in a process of their own); a sandbox without one
  (the remote backend) runs program and tests as one script, see :mod:`r1lab.code.remote`.

With ``stop_at_first_failure`` (the all-or-nothing accuracy) stdio cases stop at the first failure; the report
then counts the cases not run as failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from r1lab.code.problems import CodeProblem, outputs_match


@dataclass(frozen=True)
class TestReport:
    passed: int
    total: int
    status: str  # passed | failed | no_code | timeout | output_limit | fatal | ...
    detail: str
    seconds: float

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "status": self.status,
            "detail": self.detail,
            "seconds": self.seconds,
        }


def no_code_report(problem: CodeProblem) -> TestReport:
    return TestReport(0, problem.test_count, "no_code", "no ```python block in the answer", 0.0)


def run_tests(problem: CodeProblem, code: str, sandbox, stop_at_first_failure: bool = False) -> TestReport:
    if problem.kind == "stdio":
        return _run_stdio(problem, code, sandbox, stop_at_first_failure)
    result = sandbox.run_judged(problem.preamble, code, problem.judge_spec())
    passed = sum(result.passed)
    status = (
        "passed"
        if passed == result.total and result.status == "done"
        else ("failed" if result.status == "done" else result.status)
    )
    return TestReport(passed, result.total, status, result.detail, result.seconds)


def _run_stdio(problem: CodeProblem, code: str, sandbox, stop_at_first_failure: bool) -> TestReport:
    passed, seconds, status, detail = 0, 0.0, "passed", "all tests passed"
    for index, (given, wanted) in enumerate(problem.cases):
        result = sandbox.run_program(code, stdin=given)
        seconds += result.seconds
        if result.status == "ok" and outputs_match(result.stdout, wanted, problem.float_tolerance):
            passed += 1
            continue
        if status == "passed":
            status = "failed" if result.status in ("ok", "exit", "signal") else result.status
            why = "wrong output" if result.status == "ok" else f"{result.status} (exit {result.exit_code})"
            last = (result.stderr.strip().splitlines() or [""])[-1][:200]
            detail = f"case {index}: {why}" + (f": {last}" if last and result.status != "ok" else "")
        if stop_at_first_failure:
            break
    return TestReport(passed, len(problem.cases), status, detail, round(seconds, 3))
