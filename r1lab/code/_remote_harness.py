"""The script a remote executor runs for assert tests (stdlib only): one JSON object on stdin with ``preamble``,
``source``, ``spec`` (as the judge's tests.json) and ``token``; verdict lines as the judge writes them.

Program and tests share this one process, so unlike the local judged run a program can tamper with its tests:
use the remote backend for stdin/stdout problems, or for programs you trust (docs/code.md).
"""

import builtins
import json
import sys

TESTCODE = None  # replaced by r1lab with _testcode.py's source before sending


def main():
    payload = json.loads(sys.stdin.read())
    token, spec = payload["token"], payload["spec"]
    testcode: dict = {"__name__": "_testcode"}  # _testcode's functions and constants
    assert TESTCODE is not None, "r1lab inlines _testcode.py's source before sending"
    exec(TESTCODE, testcode)
    out = sys.stdout

    def emit(message):
        out.write(f"{token} {json.dumps(message)}\n")
        out.flush()

    def record(index, error):
        emit(
            {
                "test": index,
                "passed": error is None,
                "error": None if error is None else f"{type(error).__name__}: {error}"[:300],
            }
        )

    style = spec["style"]
    if style != "list":
        tree, total = testcode["instrument"](spec["test_code"], style == "check")
        code = compile(tree, "<tests>", "exec")
    else:
        total = len(spec["statements"])
    emit({"total": max(1, total)})
    namespace: dict = {"__name__": "solution", "__builtins__": builtins}  # the program and the tests
    try:
        exec(compile(payload["preamble"] + "\n" + payload["source"], "solution.py", "exec"), namespace)
    except BaseException as error:
        emit({"fatal": f"the program did not load: {type(error).__name__}: {error}"[:300]})
        return
    entry_point = spec.get("entry_point")
    if entry_point and not callable(namespace.get(entry_point)):
        emit({"fatal": f"the program does not define {entry_point}"})
        return
    namespace[testcode["RECORD"]] = record
    if style == "list":
        for index, statement in enumerate(spec["statements"]):
            try:
                exec(compile(statement, f"<test {index}>", "exec"), namespace)
            except BaseException as error:
                record(index, error)
            else:
                record(index, None)
    else:
        try:
            exec(code, namespace)
            if style == "check":
                namespace[testcode["CHECK"]](namespace[entry_point])
            outcome = None
        except BaseException as error:
            outcome = error
        if total == 0:
            record(0, outcome)
    emit({"done": True})


if __name__ == "__main__":
    main()
