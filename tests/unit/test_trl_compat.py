"""Every private piece of TRL r1lab touches lives in r1lab/training/trl_compat.py, listed in its PRIVATE with what r1lab
expects of it: each is checked here at the installed TRL (a TRL upgrade that changes one fails here, naming it, before
it fails in training), and a scan fails if any other r1lab module names a private TRL attribute."""

from __future__ import annotations

import ast
import inspect
import os
import re
from importlib import metadata

import pytest
from trl import GRPOTrainer

from r1lab.training import trl_compat
from r1lab.training.trl_compat import PRIVATE, TRL_VERSION, GRPOHooks

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "r1lab")
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "grpo.md")


def test_installed_trl_is_the_pinned_minor_version():
    installed = ".".join(metadata.version("trl").split(".")[:2])
    assert installed == TRL_VERSION, f"TRL {installed} installed; trl_compat was written for {TRL_VERSION}"


def _member(name: str, owner):
    """The TRL member an entry of PRIVATE names: ``_x`` on its owner, ``Class.method`` for a call's signature."""
    attribute = name.rsplit(".", 1)[-1]
    if attribute == "apply":  # an autograd Function's apply takes its forward's arguments
        return owner.forward
    return getattr(owner, attribute)


@pytest.mark.parametrize("name", list(PRIVATE))
def test_each_private_piece_of_trl_is_as_expected(name):
    entry = PRIVATE[name]
    assert entry.why, f"{name}: say why r1lab touches it"
    owner = trl_compat.resolve(entry.owner)
    if entry.kind in ("override", "call"):
        assert hasattr(owner, name.rsplit(".", 1)[-1]), f"TRL's {entry.owner} no longer has {name}"
        actual = str(inspect.signature(_member(name, owner)))
        assert actual == entry.expected, f"TRL changed {entry.owner}.{name}:\n  was {entry.expected}\n  now {actual}"
    else:
        assert entry.kind in ("attribute", "patch"), f"{name}: unknown kind {entry.kind}"
        assert entry.expected in inspect.getsource(owner), (
            f"TRL's {entry.owner} no longer has {entry.expected!r} ({name})"
        )


def test_every_overridden_private_method_is_listed():
    overridden = {
        name
        for name, value in vars(GRPOHooks).items()
        if callable(value) and name.startswith("_") and not name.startswith("__") and hasattr(GRPOTrainer, name)
    }
    listed = {name for name, entry in PRIVATE.items() if entry.kind == "override"}
    assert overridden == listed, f"list each TRL method GRPOHooks overrides: {sorted(overridden ^ listed)}"


def test_the_docs_table_is_generated_from_the_list():
    with open(DOCS, encoding="utf-8") as handle:
        page = handle.read()
    assert trl_compat.markdown_table() in page, (
        "docs/grpo.md's table of private TRL is stale: paste `python -m r1lab.training.trl_compat` in its place"
    )


# --- nothing outside trl_compat names a private TRL attribute -------------------------------------------------


def _trl_private_names() -> set[str]:
    """Every private attribute and method name TRL's sources (and the transformers Trainer they extend) define or
    use on an object, plus the non-underscore names of PRIVATE that are private protocol (fused_lm_head, ...)."""
    import transformers
    import trl

    names = set()
    roots = [os.path.dirname(trl.__file__), os.path.join(os.path.dirname(transformers.__file__), "trainer.py")]
    for root in roots:
        paths = (
            [root]
            if root.endswith(".py")
            else [
                os.path.join(folder, name)
                for folder, _, files in os.walk(root)
                for name in files
                if name.endswith(".py")
            ]
        )
        for path in paths:
            with open(path, encoding="utf-8", errors="replace") as handle:
                source = handle.read()
            names |= set(re.findall(r"(?:self|cls)\.(_[A-Za-z]\w*)", source))
            names |= set(re.findall(r"^\s+def (_[A-Za-z]\w*)", source, re.M))
    names = {name for name in names if not name.startswith("__")}
    return names | {"fused_lm_head", "ChunkedLogProbFunction"}


# Where a class's base comes from when its methods override TRL's: a def of a TRL private name there is an override.
_TRL_MODULES = ("trl", "transformers", "r1lab.training.trl_compat")


def private_trl_uses(source: str, trl_names: set[str]) -> list[tuple[int, str]]:
    """(line, name) for each private TRL name ``source`` uses: an attribute, a string equal to it (getattr), a
    keyword argument, a bare name, a private import from trl, or a method of a TRL subclass overriding it. Names the
    module defines itself (outside TRL subclasses) are its own."""
    tree = ast.parse(source)
    from_trl = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("trl", "transformers"))
        or (isinstance(node, ast.ImportFrom) and node.module == "r1lab.training.trl_compat")
        for alias in node.names
    }
    trl_classes = {
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(isinstance(base, ast.Name) and base.id in from_trl for base in node.bases)
    }
    overrides = {
        item for cls in trl_classes for item in cls.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    own = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node not in overrides
    }
    own |= {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trl":
            found += [
                (node.lineno, alias.name)
                for alias in node.names
                if alias.name.startswith("_") or alias.name in trl_names
            ]
            continue
        name = None
        if node in overrides:
            name = node.name if node.name in trl_names else None
            found += [(node.lineno, name)] if name else []
            continue
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value
        elif isinstance(node, ast.keyword):
            name = node.arg
        elif isinstance(node, ast.Name):
            name = node.id
        if name in trl_names and name not in own:
            found.append((getattr(node, "lineno", 0), name))
    return found


def test_the_scan_finds_each_kind_of_private_use():
    names = {"_logs", "_compute_loss", "fused_lm_head", "ChunkedLogProbFunction"}
    source = """
from trl import GRPOTrainer
from trl.kernels import ChunkedLogProbFunction


class Mine(GRPOTrainer):
    def _compute_loss(self, model, inputs):
        return model(fused_lm_head=True)


def read(trainer):
    return trainer._logs, getattr(trainer, "_logs")


class Own:
    def _compute_loss(self):  # r1lab's own class: its own name
        return self._compute_loss
"""
    assert sorted(private_trl_uses(source, names)) == [
        (3, "ChunkedLogProbFunction"),
        (7, "_compute_loss"),
        (8, "fused_lm_head"),
        (12, "_logs"),
        (12, "_logs"),
    ]


def test_no_module_but_trl_compat_names_a_private_trl_attribute():
    names = _trl_private_names()
    assert {"_logs", "_metrics", "_step", "_tokenizer", "_compute_loss", "_iter_named_params"} <= names
    found = []
    root = os.path.abspath(PACKAGE)
    for folder, _, files in os.walk(root):
        for file_name in sorted(files):
            path = os.path.join(folder, file_name)
            if not file_name.endswith(".py") or path == os.path.abspath(trl_compat.__file__):
                continue
            with open(path, encoding="utf-8") as handle:
                uses = private_trl_uses(handle.read(), names)
            found += [f"{os.path.relpath(path, root)}:{line}: {name}" for line, name in uses]
    assert not found, "private TRL names outside r1lab/training/trl_compat.py (move them there):\n" + "\n".join(found)


def test_the_engine_patch_adds_settings_inside_the_block_only(monkeypatch):
    import trl.generation.vllm_generation as module

    built = []
    monkeypatch.setattr(module, "LLM", lambda **kwargs: built.append(kwargs), raising=False)
    original = module.LLM
    with trl_compat.vllm_engine_settings({"enforce_eager": True}):
        module.LLM(model="m", seed=0)
    module.LLM(model="m")
    assert built == [{"model": "m", "seed": 0, "enforce_eager": True}, {"model": "m"}]
    assert module.LLM is original
