"""Problems with tests: the dataset layouts, the code in a completion, and stdout comparison (pure functions).

A :class:`CodeProblem` is either

- ``assert``: the candidate's functions are called by dataset test code — HumanEval's ``check(candidate)``
  with an ``entry_point``, MBPP's list of ``assert`` statements, or a test script; ``preamble`` is dataset code
  that runs before the candidate (HumanEval: the prompt up to the function, i.e. imports and helpers); or
- ``stdio``: the program reads stdin and writes stdout, checked against (input, output) pairs.

Row layouts (:func:`problem_from_row`, first match wins):

=====================  =============================================================================
HumanEval              ``prompt``, ``test`` (defines ``check(candidate)``), ``entry_point``
MBPP                   ``test_list`` (assert statements), optional ``test_setup_code`` / ``test_imports``
stdin/stdout           ``inputs`` + ``outputs`` (lists); APPS ``input_output`` (JSON); CodeContests
                       ``public_tests``/``private_tests``/``generated_tests`` ({input: [...], output: [...]});
                       open-r1 ``verification_info`` ({test_cases: [{input, output}], language})
generic                ``tests``: assert statements (list), test code (string), or [{input, output}] pairs
=====================  =============================================================================
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any

from r1lab.code._testcode import CHECK, count_tests, has_check_function
from r1lab.config import check_bounds, setting
from r1lab.errors import UserError

LAYOUTS = ("auto", "humaneval", "mbpp", "stdio", "tests")
QUESTION_KEYS = ("question", "problem", "description", "text", "prompt")
# ```python / ```py / ```python3 / a bare ``` fence, up to the closing fence.
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_PYTHON_TAGS = ("", "python", "py", "python3", "py3")

ASSERT_INSTRUCTION = "Answer with the complete function (and any imports it needs) in one ```python code block."
STDIO_INSTRUCTION = (
    "Write a Python program that reads the input from standard input and prints the answer to standard output. "
    "Answer with the program in one ```python code block."
)


@dataclass(frozen=True)
class CodeProblem:
    kind: str  # "assert" | "stdio"
    preamble: str = ""
    test_code: str = ""  # assert: check(candidate) code or a test script
    statements: tuple[str, ...] = ()  # assert: separate statements (MBPP)
    entry_point: str | None = None
    cases: tuple[tuple[str, str], ...] = ()  # stdio: (input, expected output)
    float_tolerance: float = setting(
        1e-6,
        "stdio: how far (absolute or relative) a number may be from an expected token written as a float; "
        "expected integers are always compared exactly. A row's float_tolerance column sets it per problem.",
        minimum=0.0,
        maximum=0.1,
    )

    @property
    def style(self) -> str:
        if self.statements:
            return "list"
        return "check" if self.entry_point and has_check_function(ast.parse(self.test_code)) else "script"

    def judge_spec(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "test_code": self.test_code,
            "statements": list(self.statements),
            "entry_point": self.entry_point,
        }

    @property
    def test_count(self) -> int:
        if self.kind == "stdio":
            return len(self.cases)
        return len(self.statements) if self.statements else count_tests(self.test_code, self.style == "check")


def last_code_block(text: str | None) -> str | None:
    """The last fenced Python (or untagged) code block in ``text``; None when there is none."""
    if not text:
        return None
    blocks = [body for tag, body in _FENCE.findall(text) if tag.lower() in _PYTHON_TAGS]
    code = blocks[-1] if blocks else None
    return code if code and code.strip() else None


def answer_part(text: str, template_name: str) -> str:
    """Where a template puts the answer: inside the last ``<answer>`` (xml; to the end when it is not closed),
    after the last ``</think>`` (think); the whole text when the layout is missing."""
    if template_name == "xml" and "<answer>" in text:
        return text.rsplit("<answer>", 1)[1].split("</answer>", 1)[0]
    if template_name == "think" and "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    return text if template_name not in ("xml", "think") else ""


def extract_code(text: str, template_name: str) -> str | None:
    """The program a completion commits to: the last ```python block of its answer part."""
    return last_code_block(answer_part(text, template_name))


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def outputs_match(actual: str, expected: str, tolerance: float = 1e-6) -> bool:
    """stdout against the expected output: the same whitespace-separated tokens (line breaks and trailing spaces
    do not matter). An expected integer token needs an integer of the same value (exactly: ``1000000000`` is
    not ``1000000007``); an expected float token (``0.5``, ``1e-3``) accepts a number within ``tolerance``,
    absolute or relative."""
    got, want = actual.split(), expected.split()
    if len(got) != len(want):
        return False
    for left, right in zip(got, want):
        if left == right:
            continue
        if _INTEGER.fullmatch(right):
            if not (_INTEGER.fullmatch(left) and int(left) == int(right)):
                return False
            continue
        a, b = _number(left), _number(right)
        if a is None or b is None or not math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance):
            return False
    return True


def float_tolerance(row: dict[str, Any], where: str) -> float:
    """A row's ``float_tolerance`` (within the field's declared bounds), else the declared default."""
    declared = next(item for item in fields(CodeProblem) if item.name == "float_tolerance")
    value = row.get("float_tolerance")
    if value is None:
        assert isinstance(declared.default, float)  # the field's declared default
        return declared.default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: float_tolerance must be a number, got {value!r}")
    check_bounds(f"{where}: float_tolerance", value, declared.metadata)
    return float(value)


def _as_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise UserError(f"{where}: not a JSON list") from None
    if not isinstance(value, (list, tuple)):
        raise UserError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)


def _as_dict(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise UserError(f"{where}: not a JSON object") from None
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _text(value: Any) -> str:
    if isinstance(value, list):  # some sets keep the input as a list of lines
        return "\n".join(str(line) for line in value) + "\n"
    return str(value)


def _cases(inputs: list[Any], outputs: list[Any], where: str) -> tuple[tuple[str, str], ...]:
    if len(inputs) != len(outputs):
        raise UserError(f"{where}: {len(inputs)} inputs but {len(outputs)} outputs")
    return tuple((_text(given), _text(wanted)) for given, wanted in zip(inputs, outputs))


def _parses(code: str, where: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError as error:
        raise UserError(f"{where}: test code does not parse ({error.msg}, line {error.lineno})") from None
    except (RecursionError, MemoryError):  # nested deeper than Python's parser goes
        raise UserError(f"{where}: test code is nested too deeply to parse") from None
    return code


def humaneval_preamble(prompt: str, entry_point: str) -> str:
    """The prompt's code before ``def <entry_point>(``: imports and helper functions the tests may use."""
    cut = re.search(rf"^def {re.escape(entry_point)}\s*\(", prompt, re.MULTILINE)
    return prompt[: cut.start()] if cut else ""


def detect_layout(row: dict[str, Any]) -> str | None:
    if "test" in row and ("entry_point" in row or "prompt" in row):
        return "humaneval"
    if "test_list" in row:
        return "mbpp"
    if any(key in row for key in ("inputs", "input_output", "public_tests", "private_tests", "verification_info")):
        return "stdio"
    if "tests" in row:
        return "tests"
    return None


def _stdio_cases(row: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    if "inputs" in row:
        return _cases(
            _as_list(row["inputs"], f"{where} inputs"), _as_list(row.get("outputs"), f"{where} outputs"), where
        )
    if "input_output" in row:
        spec = _as_dict(row["input_output"], f"{where} input_output")
        if spec.get("fn_name"):
            raise UserError(
                f"{where}: call-based APPS rows (fn_name {spec['fn_name']!r}) are not supported; use stdin/stdout rows"
            )
        return _cases(
            _as_list(spec.get("inputs", []), f"{where} input_output.inputs"),
            _as_list(spec.get("outputs", []), f"{where} input_output.outputs"),
            where,
        )
    if "verification_info" in row:
        info = _as_dict(row["verification_info"], f"{where} verification_info")
        language = str(info.get("language", "python")).lower()
        if not language.startswith("python"):
            raise UserError(f"{where}: verification_info language {language!r}: only Python programs are run")
        cases = _as_list(info.get("test_cases", []), f"{where} verification_info.test_cases")
        if any(not isinstance(case, dict) or "input" not in case or "output" not in case for case in cases):
            raise UserError(f"{where}: each verification_info test case needs input and output")
        return tuple((_text(case["input"]), _text(case["output"])) for case in cases)
    found: list[tuple[str, str]] = []
    for key in ("public_tests", "private_tests", "generated_tests"):  # CodeContests
        if row.get(key):
            tests = _as_dict(row[key], f"{where} {key}")
            found.extend(
                _cases(
                    _as_list(tests.get("input", []), f"{where} {key}.input"),
                    _as_list(tests.get("output", []), f"{where} {key}.output"),
                    where,
                )
            )
    return tuple(found)


def problem_from_row(row: dict[str, Any], where: str, layout: str = "auto") -> CodeProblem:
    """The problem a dataset row describes; UserError naming the row when it has no usable tests."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown code layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    chosen = detect_layout(row) if layout == "auto" else layout
    if chosen is None:
        raise UserError(
            f"{where}: unknown layout: no test columns (expected test + entry_point, test_list, inputs + outputs, "
            f"input_output, public_tests, verification_info or tests; has: {', '.join(sorted(row)) or 'nothing'})"
        )
    if chosen == "humaneval":
        test = str(row.get("test") or "")
        if not test.strip():
            raise UserError(f"{where}: no tests (empty test column)")
        entry_point: str | None = str(row.get("entry_point") or "").strip()  # the other layouts': str or None
        if has_check_function(ast.parse(_parses(test, where))) and not entry_point:
            raise UserError(f"{where}: the tests define {CHECK}(candidate) but the row has no entry_point")
        preamble = humaneval_preamble(str(row.get("prompt") or ""), entry_point) if entry_point else ""
        return CodeProblem(
            "assert", preamble=_parses(preamble, f"{where} prompt"), test_code=test, entry_point=entry_point or None
        )
    if chosen == "mbpp":
        statements = tuple(str(item) for item in _as_list(row["test_list"], f"{where} test_list") if str(item).strip())
        if not statements:
            raise UserError(f"{where}: no tests (empty test_list)")
        for statement in statements:
            _parses(statement, where)
        setup = "\n".join(
            str(row.get(key) or "") if not isinstance(row.get(key), list) else "\n".join(row[key])
            for key in ("test_imports", "test_setup_code")
        )
        return CodeProblem(
            "assert",
            preamble=_parses(setup.strip() + "\n" if setup.strip() else "", where),
            statements=statements,
            entry_point=str(row["entry_point"]) if row.get("entry_point") else None,
        )
    if chosen == "stdio":
        cases = _stdio_cases(row, where)
        if not cases:
            raise UserError(f"{where}: no tests (no input/output pairs)")
        return CodeProblem("stdio", cases=cases, float_tolerance=float_tolerance(row, where))
    tests = row.get("tests")
    entry_point = str(row["entry_point"]) if row.get("entry_point") else None
    if isinstance(tests, str):
        if not tests.strip():
            raise UserError(f"{where}: no tests (empty tests column)")
        if has_check_function(ast.parse(_parses(tests, where))) and not entry_point:
            raise UserError(f"{where}: the tests define {CHECK}(candidate) but the row has no entry_point")
        return CodeProblem("assert", preamble=str(row.get("preamble") or ""), test_code=tests, entry_point=entry_point)
    items = _as_list(tests, f"{where} tests") if tests is not None else []
    if not items:
        raise UserError(f"{where}: no tests (empty tests column)")
    if all(isinstance(item, dict) for item in items):
        if any("input" not in item or "output" not in item for item in items):
            raise UserError(f"{where}: each test needs input and output (or give assert statements)")
        return CodeProblem(
            "stdio",
            cases=tuple((_text(item["input"]), _text(item["output"])) for item in items),
            float_tolerance=float_tolerance(row, where),
        )
    statements = tuple(str(item) for item in items)
    for statement in statements:
        _parses(statement, where)
    return CodeProblem(
        "assert", preamble=str(row.get("preamble") or ""), statements=statements, entry_point=entry_point
    )


def question_from_row(row: dict[str, Any], problem: CodeProblem, where: str) -> str:
    """The user's message: the task text plus how to answer (HumanEval: the prompt's code in a block)."""
    if "test" in row and row.get("entry_point") and row.get("prompt"):
        return (
            f"Complete the Python function `{row['entry_point']}` below so that it does what its docstring says. "
            f"{ASSERT_INSTRUCTION}\n\n```python\n{str(row['prompt']).rstrip()}\n```"
        )
    text = next(
        (str(row[key]).strip() for key in QUESTION_KEYS if isinstance(row.get(key), str) and row[key].strip()), None
    )
    if text is None:
        raise UserError(f"{where}: no question text (one of: {', '.join(QUESTION_KEYS)})")
    if problem.kind == "stdio":
        return f"{text}\n\n{STDIO_INSTRUCTION}"
    shown = "\n".join(problem.statements[:3])
    return f"{text}\n{ASSERT_INSTRUCTION}" + (f"\nYour code should pass these tests:\n{shown}" if shown else "")


def reference_solution(row: dict[str, Any]) -> str | None:
    """The dataset's own solution as a complete program, when it has one (HumanEval: prompt + canonical body)."""
    if row.get("canonical_solution") and row.get("prompt"):
        return str(row["prompt"]) + str(row["canonical_solution"])
    for key in ("solution", "code", "reference_solution"):
        if isinstance(row.get(key), str) and row[key].strip():
            return row[key]
    solutions = row.get("solutions")
    if isinstance(solutions, list) and solutions and isinstance(solutions[0], str):
        return solutions[0]
    return None
