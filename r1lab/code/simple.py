"""``--dataset simple``: generated function problems in HumanEval's layout, with their tests and reference programs.

Two kinds, picked with ``task_options: {simple: {kind: ...}}``:

- ``basic`` (the default): a one-line function (add a constant, repeat a string, count a letter, ...) with its
  constant drawn per problem; for smoke runs and tests.
- ``chains``: a value taken through 1 to 4 steps in order (an integer: add, multiply, divide rounding down, take a
  remainder, ...; a string: upper case, reverse, append, repeat, ...; a list of integers: keep those above a
  bound, add to each, sort, ...), named in words in the docstring, answered by one expression. Each problem also
  carries an ``explanation`` (the expression built step by step) that ``cold-start-data``'s ``source: solutions``
  writes as the reasoning, with the reference program as the answer. ``min_steps`` / ``max_steps`` set the
  difficulty, ``domains`` the value types.

The tests are ``check(candidate)`` asserts whose expected values come from Python functions written apart from the
reference program (r1lab never runs the reference to make its own tests).

Splits: ``train``, ``validation`` and ``test`` partition the problems **by identity** (the kind, family or domain,
steps and constants, hashed): a problem belongs to one split only, whatever the seed and the sizes, so a test
problem is never a train or validation problem. The seed picks which problems of a split are drawn and their order.
``size`` (default: train 60, validation 60, test 20) is how many.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

from r1lab.errors import UserError

SPLITS = ("train", "validation", "test")
DEFAULT_SIZES = {"train": 60, "validation": 60, "test": 20}
KINDS = ("basic", "chains")
OPTION_KEYS = ("kind", "size", "min_steps", "max_steps", "domains")
MAX_STEPS = 4

# (entry point, signature, docstring with {c}, body with {c}, the same function in Python, draw of the constant,
# arguments for the tests). The tests' expected values come from the Python function (r1lab never runs the body).
FAMILIES: tuple[
    tuple[str, str, str, str, Callable[..., Any], Callable[[random.Random], Any], tuple[tuple, ...]], ...
] = (
    (
        "add_constant",
        "x: int",
        "Return x plus {c}.",
        "return x + {c}",
        lambda c, x: x + c,
        lambda r: r.randint(1, 99),
        ((0,), (5,), (-3,), (100,)),
    ),
    (
        "times_constant",
        "x: int",
        "Return x multiplied by {c}.",
        "return x * {c}",
        lambda c, x: x * c,
        lambda r: r.randint(2, 12),
        ((0,), (3,), (-4,), (7,)),
    ),
    (
        "repeat_text",
        "s: str",
        "Return the string s repeated {c} times.",
        "return s * {c}",
        lambda c, s: s * c,
        lambda r: r.randint(2, 5),
        (("ab",), ("",), ("x",)),
    ),
    (
        "count_letter",
        "s: str",
        "Return how many times the letter '{c}' occurs in s.",
        "return s.count('{c}')",
        lambda c, s: s.count(c),
        lambda r: r.choice("abcdeor"),
        (("banana",), ("",), ("abracadabra",), ("rococo",)),
    ),
    (
        "is_multiple",
        "n: int",
        "Return True when n is a multiple of {c}, else False.",
        "return n % {c} == 0",
        lambda c, n: n % c == 0,
        lambda r: r.randint(2, 9),
        ((0,), (12,), (35,), (8,), (9,)),
    ),
    (
        "sum_above",
        "xs: list",
        "Return the sum of the numbers in xs that are greater than {c}.",
        "return sum(x for x in xs if x > {c})",
        lambda c, xs: sum(x for x in xs if x > c),
        lambda r: r.randint(0, 9),
        (([1, 5, 10],), ([],), ([3, 7, 20, -1],)),
    ),
    (
        "last_items",
        "xs: list",
        "Return the last {c} items of xs as a list (all of them when xs is shorter).",
        "return xs[-{c}:]",
        lambda c, xs: xs[-c:],
        lambda r: r.randint(1, 4),
        (([1, 2, 3, 4, 5],), ([9],), ([],)),
    ),
    (
        "power_of",
        "x: int",
        "Return x raised to the power {c}.",
        "return x ** {c}",
        lambda c, x: x**c,
        lambda r: r.randint(2, 4),
        ((2,), (3,), (-1,), (0,)),
    ),
    (
        "shout",
        "s: str",
        "Return s in upper case followed by {c} exclamation marks.",
        "return s.upper() + '!' * {c}",
        lambda c, s: s.upper() + "!" * c,
        lambda r: r.randint(1, 3),
        (("hi",), ("",), ("Go on",)),
    ),
    (
        "clamp_to",
        "x: int",
        "Return x, but never more than {c}.",
        "return min(x, {c})",
        lambda c, x: min(x, c),
        lambda r: r.randint(0, 50),
        ((0,), (10,), (99,), (-5,)),
    ),
)


# -- chains -----------------------------------------------------------------------------------------------------

# Python's binding strengths, enough for the expressions the steps build: an operand binding more loosely than its
# operator needs is put in parentheses.
ADD, MUL, POW, ATOM = 1, 2, 3, 4


def _wrap(expression: str, strength: int, needed: int) -> str:
    return expression if strength >= needed else f"({expression})"


def _binary(operator: str, strength: int, left_needs: int | None = None) -> Callable[[str, int, Any], tuple[str, int]]:
    """A step ``<value> <operator> <constant>``; the left operand must bind at least ``left_needs``."""
    needs = strength if left_needs is None else left_needs
    return lambda expression, bound, c: (f"{_wrap(expression, bound, needs)} {operator} {c!r}", strength)


def _method(template: str) -> Callable[[str, int, Any], tuple[str, int]]:
    """A step that puts the value where ``{e}`` is in an atom (a call, a subscript, a comprehension)."""
    return lambda expression, bound, c: (template.format(e=_wrap(expression, bound, ATOM), c=c), ATOM)


def _call(template: str) -> Callable[[str, int, Any], tuple[str, int]]:
    """A step that passes the value as an argument (no parentheses needed around it)."""
    return lambda expression, bound, c: (template.format(e=expression, c=c), ATOM)


_LETTERS = "abeilnorst"

# domain: (entry point, parameter, its type, test arguments, steps). A step: (name, words with {c}, code builder,
# the same step in Python, draw of its constant or None). The words go in the docstring, the builder writes the
# reference expression, the Python function computes the tests' expected values.
DOMAINS: dict[str, tuple[str, str, str, tuple[Any, ...], tuple[tuple, ...]]] = {
    "int": (
        "transform_number",
        "x",
        "int",
        (-7, -1, 0, 2, 5, 13),
        (
            ("add", "add {c}", _binary("+", ADD), lambda c, v: v + c, lambda r: r.randint(1, 9)),
            ("subtract", "subtract {c}", _binary("-", ADD), lambda c, v: v - c, lambda r: r.randint(1, 9)),
            ("multiply", "multiply by {c}", _binary("*", MUL), lambda c, v: v * c, lambda r: r.randint(2, 9)),
            (
                "divide",
                "divide by {c}, rounding down",
                _binary("//", MUL),
                lambda c, v: v // c,
                lambda r: r.randint(2, 5),
            ),
            (
                "remainder",
                "take the remainder of dividing by {c}",
                _binary("%", MUL),
                lambda c, v: v % c,
                lambda r: r.randint(2, 9),
            ),
            ("power", "raise to the power {c}", _binary("**", POW, ATOM), lambda c, v: v**c, lambda r: r.randint(2, 3)),
            ("absolute", "take the absolute value", _call("abs({e})"), lambda c, v: abs(v), None),
            ("at_most", "cap it at {c}", _call("min({e}, {c})"), lambda c, v: min(v, c), lambda r: r.randint(0, 20)),
            (
                "at_least",
                "raise it to at least {c}",
                _call("max({e}, {c})"),
                lambda c, v: max(v, c),
                lambda r: r.randint(0, 20),
            ),
        ),
    ),
    "str": (
        "transform_text",
        "s",
        "str",
        ("hello", "", "Banana split", "abcabc"),
        (
            ("upper", "make it upper case", _method("{e}.upper()"), lambda c, v: v.upper(), None),
            ("lower", "make it lower case", _method("{e}.lower()"), lambda c, v: v.lower(), None),
            ("reverse", "reverse it", _method("{e}[::-1]"), lambda c, v: v[::-1], None),
            ("repeat", "repeat it {c} times", _binary("*", MUL), lambda c, v: v * c, lambda r: r.randint(2, 3)),
            (
                "append",
                "add {c!r} at the end",
                _binary("+", ADD),
                lambda c, v: v + c,
                lambda r: r.choice(("!", "?", "ab", "xyz", "-", "42")),
            ),
            (
                "first",
                "keep its first {c} characters",
                _method("{e}[:{c}]"),
                lambda c, v: v[:c],
                lambda r: r.randint(1, 5),
            ),
            (
                "drop",
                "drop its first {c} characters",
                _method("{e}[{c}:]"),
                lambda c, v: v[c:],
                lambda r: r.randint(1, 3),
            ),
            (
                "replace",
                "replace every {c[0]!r} with {c[1]!r}",
                lambda expression, bound, c: (f"{_wrap(expression, bound, ATOM)}.replace({c[0]!r}, {c[1]!r})", ATOM),
                lambda c, v: v.replace(c[0], c[1]),
                lambda r: tuple(r.sample(_LETTERS, 2)),
            ),
        ),
    ),
    "list": (
        "transform_list",
        "xs",
        "list",
        ([3, 8, 1, 6], [], [10, -2, 5, 5, 0], [7]),
        (
            (
                "above",
                "keep the numbers greater than {c}",
                _call("[v for v in {e} if v > {c}]"),
                lambda c, v: [x for x in v if x > c],
                lambda r: r.randint(0, 6),
            ),
            (
                "even",
                "keep the even numbers",
                _call("[v for v in {e} if v % 2 == 0]"),
                lambda c, v: [x for x in v if x % 2 == 0],
                None,
            ),
            (
                "add_each",
                "add {c} to each number",
                _call("[v + {c} for v in {e}]"),
                lambda c, v: [x + c for x in v],
                lambda r: r.randint(1, 9),
            ),
            (
                "times_each",
                "multiply each number by {c}",
                _call("[v * {c} for v in {e}]"),
                lambda c, v: [x * c for x in v],
                lambda r: r.randint(2, 5),
            ),
            ("sort", "sort it in increasing order", _call("sorted({e})"), lambda c, v: sorted(v), None),
            ("reverse", "reverse it", _method("{e}[::-1]"), lambda c, v: v[::-1], None),
            ("first", "keep its first {c} items", _method("{e}[:{c}]"), lambda c, v: v[:c], lambda r: r.randint(1, 3)),
        ),
    ),
}


def _chain(domain: str, steps: list[tuple[tuple, Any]]) -> dict[str, Any]:
    """The problem of putting the parameter through ``steps`` ((step, constant) pairs) in order."""
    entry_point, parameter, kind, arguments, _ = DOMAINS[domain]
    words = [step[1].format(c=constant) for step, constant in steps]
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + ", then " + words[-1]
    prompt = f'def {entry_point}({parameter}: {kind}):\n    """From {parameter}: {said}. Return the result."""\n'
    expression, bound, lines = parameter, ATOM, [f"Start with {parameter}."]
    for (_, text, build, _, _), constant in steps:
        expression, bound = build(expression, bound, constant)
        lines.append(f"{text.format(c=constant)[0].upper()}{text.format(c=constant)[1:]}: {expression}")
    asserts = []
    for argument in arguments:
        value = argument
        for (_, _, _, function, _), constant in steps:
            value = function(constant, value)
        asserts.append(f"    assert candidate({argument!r}) == {value!r}\n")
    return {
        "prompt": prompt,
        "reference_solution": f"def {entry_point}({parameter}: {kind}):\n    return {expression}\n",
        "explanation": "\n".join(lines),
        "test": "def check(candidate):\n" + "".join(asserts),
        "entry_point": entry_point,
    }


def _draw_chain(draw: random.Random, domain: str, low: int, high: int) -> tuple[str, list[tuple[tuple, Any]]]:
    """A random chain of ``low`` to ``high`` steps (never the same step twice in a row) and its identity."""
    available = DOMAINS[domain][4]
    steps: list[tuple[tuple, Any]] = []
    for _ in range(draw.randint(low, high)):
        step = draw.choice([item for item in available if not steps or item[0] != steps[-1][0][0]])
        steps.append((step, step[4](draw) if step[4] else None))
    identity = f"chains|{domain}|" + "|".join(f"{step[0]} {constant!r}" for step, constant in steps)
    return identity, steps


# -- splits -----------------------------------------------------------------------------------------------------


def split_of(identity: str) -> str:
    """The one split a problem belongs to, from its identity alone: 20 % test, 20 % validation, 60 % train."""
    bucket = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket < 2 else "validation" if bucket < 4 else "train"


def _positive_int(options: dict[str, Any], key: str, high: int | None = None) -> None:
    value = options.get(key)
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or value < 1 or (high is not None and value > high)
    ):
        bound = f"from 1 to {high}" if high else "positive"
        raise UserError(f"task_options.simple.{key} must be an integer {bound}, got {value!r}")


def simple_options(options: Any) -> dict[str, Any]:
    """``task_options.simple`` checked, with its defaults filled in (before any row loads or model starts)."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise UserError(f"task_options.simple must be a mapping ({', '.join(OPTION_KEYS)}), got {options!r}")
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise UserError(f"unknown task_options.simple key(s) {', '.join(unknown)} (keys: {', '.join(OPTION_KEYS)})")
    kind = options.get("kind", "basic")
    if kind not in KINDS:
        raise UserError(f"task_options.simple.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    _positive_int(options, "size")
    _positive_int(options, "min_steps", MAX_STEPS)
    _positive_int(options, "max_steps", MAX_STEPS)
    chain_keys = sorted({"min_steps", "max_steps", "domains"} & set(options))
    if kind == "basic" and chain_keys:
        raise UserError(f"task_options.simple: {', '.join(chain_keys)} apply to kind chains, not basic")
    low, high = options.get("min_steps", 1), options.get("max_steps", 3)
    if low > high:
        raise UserError(f"task_options.simple: min_steps {low} is more than max_steps {high}")
    domains = options.get("domains", list(DOMAINS))
    if (
        not isinstance(domains, list)
        or not domains
        or any(domain not in DOMAINS for domain in domains)
        or len(set(domains)) != len(domains)
    ):
        raise UserError(f"task_options.simple.domains must be a list of distinct {', '.join(DOMAINS)}, got {domains!r}")
    return {"kind": kind, "size": options.get("size"), "min_steps": low, "max_steps": high, "domains": domains}


def simple_rows(split: str, seed: int = 42, size: int | None = None, options: Any = None) -> list[dict[str, Any]]:
    """``size`` problems of ``split`` (``options``: ``task_options.simple``; ``size`` overrides its size)."""
    if split not in SPLITS:
        raise UserError(f"dataset simple has {', '.join(SPLITS)} splits, not {split!r}")
    settings = simple_options(options)
    count = size or settings["size"] or DEFAULT_SIZES[split]
    if settings["kind"] == "basic":
        problems = _basic_problems(random.Random(f"{seed}-{split}"), split, count)
    else:
        problems = _chain_problems(random.Random(f"{seed}-{split}-chains"), split, count, settings)
        if len(problems) < count:
            raise UserError(
                f"dataset simple [{split}]: only {len(problems)} distinct problems for the {count} asked with these"
                " options; allow more steps or domains, or ask for fewer"
            )
    return [{"task_id": f"simple/{split}/{index}", **problem} for index, problem in enumerate(problems)]


def _basic_problems(draw: random.Random, split: str, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` basic problems of ``split``, cycling through the families (a family none of whose constants
    drawn 50 times in a row is a new problem of this split is left out from then on)."""
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    families = list(FAMILIES)
    turn = 0
    while len(problems) < count and families:
        family = families[turn % len(families)]
        for _ in range(50):
            constant = family[5](draw)
            identity = f"basic|{family[0]}|{constant!r}"
            if identity not in seen and split_of(identity) == split:
                break
        else:
            families.remove(family)
            continue
        turn += 1
        seen.add(identity)
        problems.append({"identity": identity, **_row(family, constant)})
    return problems


def _chain_problems(draw: random.Random, split: str, count: int, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Up to ``count`` chains of ``split``, the domains taking turns."""
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    attempts = 0
    while len(problems) < count and attempts < 1000 * count:
        attempts += 1
        domain = settings["domains"][len(problems) % len(settings["domains"])]
        identity, steps = _draw_chain(draw, domain, settings["min_steps"], settings["max_steps"])
        if identity not in seen and split_of(identity) == split:
            seen.add(identity)
            problems.append({"identity": identity, **_chain(domain, steps)})
    return problems


# -- basic ------------------------------------------------------------------------------------------------------


def _row(family: tuple, constant: Any) -> dict[str, Any]:
    entry_point, signature, doc, body, function, _, arguments = family
    name = f"{entry_point}_{constant}"
    prompt = f'def {name}({signature}):\n    """{doc.format(c=constant)}"""\n'
    asserts = "".join(
        f"    assert candidate({', '.join(map(repr, args))}) == {function(constant, *args)!r}\n" for args in arguments
    )
    return {
        "prompt": prompt,
        "canonical_solution": f"    {body.format(c=constant)}\n",
        "test": f"def check(candidate):\n{asserts}",
        "entry_point": name,
    }
