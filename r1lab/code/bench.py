"""Sandbox throughput: programs per second with the worker pool against one at a time, in the same run.

    python -m r1lab.code.bench                       # 48 HumanEval reference checks (judged runs), then 48 stdin/stdout runs
    python -m r1lab.code.bench --programs 100 --workers 4

Each measurement alternates: one-at-a-time, then the pool, on the same programs, so a machine whose speed
drifts affects both sides alike; the ratio is pool / one-at-a-time.
"""

from __future__ import annotations

import argparse
import os
import time

from r1lab.code.judging import run_tests
from r1lab.code.problems import CodeProblem, problem_from_row, reference_solution
from r1lab.code.sandbox import LocalSandbox
from r1lab.tasks.code import humaneval_rows

STDIO_PROBLEM = CodeProblem("stdio", cases=(("3 4\n", "7\n"),))
STDIO_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


def jobs(kind: str, count: int) -> list[tuple[CodeProblem, str]]:
    if kind == "stdio":
        return [(STDIO_PROBLEM, STDIO_PROGRAM)] * count
    rows = humaneval_rows()
    chosen = [rows[index % len(rows)] for index in range(count)]
    work = []
    for row in chosen:
        solution = reference_solution(row)
        assert solution is not None  # every HumanEval row has its canonical solution
        work.append((problem_from_row(row, row["task_id"]), solution))
    return work


def measure(box: LocalSandbox, work: list[tuple[CodeProblem, str]], pooled: bool) -> float:
    started = time.perf_counter()
    if pooled:
        reports = box.map(lambda job: run_tests(job[0], job[1], box), work)
    else:
        reports = [run_tests(problem, program, box) for problem, program in work]
    seconds = time.perf_counter() - started
    if not all(report.all_passed for report in reports):
        raise SystemExit("bench: a reference program failed; the sandbox is not working here")
    return len(work) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r1lab.code.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=48, help="programs per measurement")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: the machine's cores)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating measurements per side")
    parser.add_argument("--kinds", default="judged,stdio", help="judged (HumanEval references), stdio, or both")
    args = parser.parse_args(argv)
    with LocalSandbox(workers=args.workers) as box:
        print(
            f"r1lab code sandbox bench: {len(os.sched_getaffinity(0))} cores, pool of {box.workers}, isolation {box.isolation()}"
        )
        for kind in args.kinds.split(","):
            work = jobs(kind, args.programs)
            serial, pooled = [], []
            for _ in range(args.repeats):
                serial.append(measure(box, work, pooled=False))
                pooled.append(measure(box, work, pooled=True))
            best_serial, best_pooled = max(serial), max(pooled)
            print(
                f"  {kind:6s} {args.programs} programs: one at a time {best_serial:.1f}/s, pool {best_pooled:.1f}/s, "
                f"ratio {best_pooled / best_serial:.2f}x (best of {args.repeats})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
