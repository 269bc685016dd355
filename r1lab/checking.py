"""The one place that decides whether an answer is right.

The accuracy reward, the rejection-sampling filter and the evaluator all end here (through a task's
``check``), so a number in training, in a filtered dataset and in an eval table means the same thing.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import subprocess
import sys
import threading
from decimal import Decimal, InvalidOperation

# Longer predicted answers are not answers: refuse them before any parser sees them.
MAX_ANSWER_CHARS = 512
# math-verify's timeouts use SIGALRM, which only the main thread may set: other threads (an async reward on
# TRL's event loop, a thread pool) hand the comparison to a worker process, killed when it overruns.
MATH_VERIFY_TIMEOUT_S = 2
WORKER_TIMEOUT_S = 4 * MATH_VERIFY_TIMEOUT_S  # two parses and a verify, each under math-verify's own timeout
WORKER_START_TIMEOUT_S = 120  # a fresh worker imports math-verify (sympy) before it says it is ready

_NUMBER_NOISE = re.compile(r"(\\\$|\$|,|\\,|\\!|\s|\\text\{[^}]*\}|%$)")
_PLAIN_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")


def parse_plain_number(text: str) -> Decimal | None:
    """``$1,000`` / ``1,000.00`` / `` 72 `` → Decimal; anything that is not a plain number → None."""
    cleaned = _NUMBER_NOISE.sub("", text).rstrip(".")
    if not _PLAIN_NUMBER.match(cleaned) or len(cleaned) > 60:
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _parse_math(text: str):
    """math-verify's parse, reading undelimited text as LaTeX math first: bare, ``\\left( 3, \\frac{\\pi}{2}
    \\right)`` is read as its first number (3), inside ``$...$`` as the tuple it is."""
    from math_verify import parse

    timeout = MATH_VERIFY_TIMEOUT_S  # main thread only: others go through the worker process
    if text.startswith("$") or "\\boxed" in text:
        return parse(text, parsing_timeout=timeout)
    return parse(f"${text}$", parsing_timeout=timeout) or parse(text, parsing_timeout=timeout)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str):
    return _parse_math(gold)


def answers_match(predicted: str | None, gold: str) -> bool:
    """True when ``predicted`` is mathematically equal to ``gold``.

    Plain numbers compare exactly as decimals (fast, no sympy); anything else goes to math-verify with a
    time limit. Oversized or unparsable answers are simply wrong: this never raises and never hangs.
    """
    if predicted is None:
        return False
    predicted = predicted.strip()
    gold = str(gold).strip()
    if not predicted or len(predicted) > MAX_ANSWER_CHARS:
        return False
    gold_number = parse_plain_number(gold)
    predicted_number = parse_plain_number(predicted)
    if gold_number is not None and predicted_number is not None:
        return gold_number == predicted_number
    if not _in_main_thread():
        return _WORKER.check(predicted, gold)
    try:
        from math_verify import verify

        gold_parsed = _parse_gold(gold)
        predicted_parsed = _parse_math(predicted)
        if not gold_parsed or not predicted_parsed:
            return False
        return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=MATH_VERIFY_TIMEOUT_S))
    except Exception:  # a parser failure on hostile text is a wrong answer, not a crash
        return False


def _serve() -> None:
    """``python -m r1lab.checking``: the worker process. Reads ``[predicted, gold]`` JSON lines on stdin and
    answers each with ``true`` or ``false`` on stdout, checked in its main thread (math-verify's timeouts work)."""
    replies = sys.stdout
    sys.stdout = sys.stderr  # only replies on the reply channel, whatever a parser prints
    answers_match("\\frac{1}{2}", "0.5")  # import and warm up math-verify before the first timed request
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        try:
            predicted, gold = json.loads(line)
            verdict = answers_match(str(predicted), str(gold))
        except Exception:
            verdict = False
        replies.write("true\n" if verdict else "false\n")
        replies.flush()


class _Worker:
    """One process, started on first use, that checks answers for threads other than the main one, one request
    at a time. A request that overruns WORKER_TIMEOUT_S is a wrong answer and the process is killed (the next
    request starts a new one)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None

    def _start(self) -> None:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "r1lab.checking"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
        )
        if self._reply(WORKER_START_TIMEOUT_S) != "ready":
            raise TimeoutError("the answer-checking process did not start")

    def _reply(self, timeout: float) -> str | None:
        assert self.process is not None and self.process.stdout is not None  # started by _start, stdout a pipe
        readable, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline().strip() if readable else None

    def _stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:  # always: _start opens both as pipes
                    stream.close()
        self.process = None

    def check(self, predicted: str, gold: str) -> bool:
        with self.lock:
            try:
                if self.process is None or self.process.poll() is not None:
                    self._stop()
                    self._start()
                assert self.process is not None and self.process.stdin is not None  # _start started it
                self.process.stdin.write(json.dumps([predicted, gold]) + "\n")
                self.process.stdin.flush()
                reply = self._reply(WORKER_TIMEOUT_S)
                if reply in ("true", "false"):
                    return reply == "true"
            except (OSError, ValueError, TimeoutError):
                pass
            self._stop()
            return False


_WORKER = _Worker()


if __name__ == "__main__":
    _serve()
