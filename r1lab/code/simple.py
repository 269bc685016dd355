"""``--dataset simple``: small generated function problems in HumanEval's layout, for CPU smoke runs and tests.

Each family is a one-line function (add a constant, repeat a string, count a letter, ...) with its constant
drawn per problem; the tests are ``check(candidate)`` asserts computed from the reference solution. ``train``
and ``test`` are different seeded draws (a test problem never repeats a train one).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from r1lab.errors import UserError

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


def _row(index: int, family: tuple, constant: Any, split: str) -> dict[str, Any]:
    entry_point, signature, doc, body, function, _, arguments = family
    name = f"{entry_point}_{constant}"
    prompt = f'def {name}({signature}):\n    """{doc.format(c=constant)}"""\n'
    asserts = "".join(
        f"    assert candidate({', '.join(map(repr, args))}) == {function(constant, *args)!r}\n" for args in arguments
    )
    return {
        "task_id": f"simple/{split}/{index}",
        "prompt": prompt,
        "canonical_solution": f"    {body.format(c=constant)}\n",
        "test": f"def check(candidate):\n{asserts}",
        "entry_point": name,
    }


def simple_rows(split: str, seed: int = 42, size: int | None = None) -> list[dict[str, Any]]:
    """``size`` problems (train 60, test 20 by default) cycling through the families, constants seeded per split."""
    if split not in ("train", "test"):
        raise UserError(f"dataset simple has train and test splits, not {split!r}")
    count = size or (60 if split == "train" else 20)
    seen_train = set()
    if split == "test":
        seen_train = {row["entry_point"] for row in simple_rows("train", seed)}
    draw = random.Random(f"{seed}-{split}")
    rows: list[dict[str, Any]] = []
    attempts = 0
    while len(rows) < count and attempts < 100 * count:
        family = FAMILIES[attempts % len(FAMILIES)]
        attempts += 1
        row = _row(len(rows), family, family[5](draw), split)
        if row["entry_point"] in seen_train or any(row["entry_point"] == other["entry_point"] for other in rows):
            continue
        rows.append(row)
    return rows
