"""Test code → numbered tests (stdlib only: the judge imports it; r1lab counts the tests with it too).

A *test* is one top-level statement that contains an ``assert`` (a loop of asserts is one test), either in the
body of the test code's ``check`` function (HumanEval: ``def check(candidate): ...``) or at module level.
``assert <constant>`` statements run but are not counted. Each test is wrapped so that a failure is recorded
and the next test still runs: ``__r1lab_record__(index, error_or_None)``. Without any countable statement the
whole test code is one test (it passes when it runs without an exception).
"""

import ast

RECORD = "__r1lab_record__"
CHECK = "check"


def _counts(statement):
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    if isinstance(statement, ast.Assert) and isinstance(statement.test, ast.Constant):
        return False
    return any(isinstance(node, ast.Assert) for node in ast.walk(statement))


def _wrap(statement, index):
    record = ast.Name(id=RECORD, ctx=ast.Load())

    def call(argument):
        return ast.Expr(ast.Call(func=record, args=[ast.Constant(index), argument], keywords=[]))

    handler = ast.ExceptHandler(
        type=ast.Name(id="BaseException", ctx=ast.Load()),
        name="__r1lab_error__",
        body=[call(ast.Name(id="__r1lab_error__", ctx=ast.Load()))],
    )
    return ast.Try(body=[statement], handlers=[handler], orelse=[call(ast.Constant(None))], finalbody=[])


def _wrap_body(body, start):
    wrapped, index = [], start
    for statement in body:
        if _counts(statement):
            wrapped.append(_wrap(statement, index))
            index += 1
        else:
            wrapped.append(statement)
    return wrapped, index


def has_check_function(tree):
    return any(isinstance(node, ast.FunctionDef) and node.name == CHECK for node in tree.body)


def instrument(source, call_check):
    """(instrumented syntax tree, number of tests); the judge compiles the tree. ``call_check``: the code defines
    ``check(candidate)``, which the judge calls; its body holds the tests. Otherwise the module's own top-level
    statements are the tests."""
    tree = ast.parse(source)
    count = 0
    if call_check:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == CHECK:
                node.body, count = _wrap_body(node.body, 0)
    else:
        tree.body, count = _wrap_body(tree.body, 0)
    ast.fix_missing_locations(tree)
    return tree, count


def free_names(sources):
    """The names the code in ``sources`` reads and never binds itself (in any scope): what it expects to find."""
    read: set[str] = set()
    bound: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
    return read - bound


def count_tests(source, call_check):
    """How many tests ``instrument`` finds (at least 1: test code without asserts is one test)."""
    return max(1, instrument(source, call_check)[1])
