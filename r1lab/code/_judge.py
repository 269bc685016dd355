"""The judge (stdlib only, runs sandboxed in its own process, apart from the candidate's).

``python -I _judge.py REQUEST_FD REPLY_FD``: reads a secret token on stdin and ``tests.json``, runs the dataset's
preamble and test code with Python's own builtins; the entry point (and any other name the tests read that
neither the preamble nor Python defines) is a proxy that calls the candidate's function in the candidate's
process and returns the reply rebuilt as plain builtin data (:mod:`_wire`), or raises an ordinary error (never
a control-flow exception such as ``StopIteration``: see :func:`candidate_exception`). The candidate can
neither patch this process (no shared memory, another uid when r1lab runs as root, another PID namespace
where the machine allows) nor its verdicts: each line on stdout carries the token, which the candidate
never sees. Lines: ``{"total": n}``, one ``{"test": i, "passed": bool, "error": text}`` per test, ``{"done": true}``.
A candidate that has gone (exited, crashed, killed) fails every test from then on.
"""

import builtins
import ctypes
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _testcode
import _wire

MAX_REPLY_CHARS = 16 << 20


class CandidateGone(BaseException):
    """The candidate's process stopped answering: not an Exception, so test code cannot catch it."""


class CandidateError(Exception):
    """What the candidate raised, when it is not an ordinary builtin error: a plain failure of the test."""


# Builtin exceptions that steer the test code's own control flow (``StopIteration`` ends the ``map`` inside
# ``all(map(candidate, xs))``, which then holds): never re-raised as such.
CONTROL_FLOW = (StopIteration, StopAsyncIteration)


def candidate_exception(name, message):
    """The exception a test sees for the candidate's ``raise``: the builtin class of that name when it is an
    ordinary error (``ValueError``: tests may expect it), else :class:`CandidateError` (control flow —
    ``StopIteration``, ``GeneratorExit``, ``KeyboardInterrupt``, ``SystemExit`` — and the program's own classes)."""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and not issubclass(kind, CONTROL_FLOW):
        try:
            return kind(message)
        except Exception:
            pass
    return CandidateError(f"the candidate raised {name}: {message}")


class Judge:
    def __init__(self, token, requests, replies):
        self.token = token
        self.requests = requests
        self.replies = replies
        self.gone = None
        self.total = 0

    def emit(self, message):
        out = sys.__stdout__
        assert out is not None  # the pipe r1lab reads the verdicts from
        out.write(f"{self.token} {json.dumps(message)}\n")
        out.flush()

    def receive(self):
        line = self.replies.readline(MAX_REPLY_CHARS + 1)
        if not line.endswith("\n"):
            self.gone = self.gone or ("the candidate's reply was too long" if line else "the candidate exited")
            raise CandidateGone(self.gone)
        try:
            return _wire.loads(line)
        except ValueError:
            self.gone = "the candidate sent a malformed reply"
            raise CandidateGone(self.gone) from None

    def proxy(self, name):
        def call(*args, **kwargs):
            if self.gone:
                raise CandidateGone(self.gone)
            try:
                self.requests.write(
                    _wire.dumps({"call": name, "args": _wire.encode(list(args)), "kwargs": _wire.encode(dict(kwargs))})
                )
                self.requests.flush()
            except (BrokenPipeError, OSError):
                self.gone = "the candidate exited"
                raise CandidateGone(self.gone) from None
            reply = self.receive()
            if "ok" in reply:
                try:
                    return _wire.decode(reply["ok"])
                except (ValueError, TypeError, RecursionError) as error:
                    raise TypeError(f"the candidate returned an unreadable value: {error}") from None
            raise candidate_exception(str(reply.get("raise")), str(reply.get("message", ""))[:500])

        call.__name__ = name
        return call

    def record(self, index, error):
        passed = error is None and not self.gone
        reason = None if passed else (self.gone or f"{type(error).__name__}: {error}"[:300])
        self.emit({"test": index, "passed": passed, "error": reason})


PR_SET_DUMPABLE = 4


def main():
    # Not dumpable: a program under the same uid (r1lab run as a user without namespaces) cannot open this
    # process's /proc entries (its memory, where the token is; its stdout).
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    token = sys.stdin.readline().strip()
    requests = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    replies = os.fdopen(int(sys.argv[2]), "r", encoding="utf-8")
    with open("tests.json", encoding="utf-8") as handle:
        spec = json.load(handle)
    judge = Judge(token, requests, replies)
    style = spec["style"]
    if style == "list":
        judge.total = len(spec["statements"])
    else:
        tree, judge.total = _testcode.instrument(spec["test_code"], call_check=style == "check")
        code = compile(tree, "<tests>", "exec")
    judge.emit({"total": max(1, judge.total)})
    try:
        hello = judge.receive()
    except CandidateGone as error:
        hello = {"error": str(error)}
    if "names" not in hello:
        judge.emit({"fatal": f"the program did not load: {hello.get('error')}"})
        return
    namespace: dict = {"__name__": "__tests__", "__builtins__": builtins}  # what the tests and preamble define
    exec(compile(spec.get("preamble", ""), "<preamble>", "exec"), namespace)
    # What crosses from the candidate: the entry point, and the names the tests read, never bind, and that
    # neither the preamble nor Python defines (MBPP's tests call the function by its name). A program that defines ``abs``, ``range``
    # or ``sorted`` does not change what the tests call.
    wanted = _testcode.free_names([spec["test_code"]] if style != "list" else spec["statements"])
    wanted -= set(namespace) | set(dir(builtins))
    for name in hello["names"]:
        if isinstance(name, str) and name in wanted:
            namespace[name] = judge.proxy(name)
    entry_point = spec.get("entry_point")
    if entry_point:
        if entry_point not in hello["names"]:
            judge.emit({"fatal": f"the program does not define {entry_point}"})
            return
        namespace[entry_point] = judge.proxy(entry_point)
    namespace[_testcode.RECORD] = judge.record
    if style == "list":
        for index, statement in enumerate(spec["statements"]):
            try:
                exec(compile(statement, f"<test {index}>", "exec"), namespace)
            except BaseException as error:
                judge.record(index, error)
            else:
                judge.record(index, None)
    else:
        try:
            exec(code, namespace)
            if style == "check":
                namespace[_testcode.CHECK](namespace[entry_point])
            outcome = None
        except BaseException as error:
            outcome = error
        if judge.total == 0:
            judge.record(0, outcome)
    judge.emit({"done": True})


if __name__ == "__main__":
    main()
