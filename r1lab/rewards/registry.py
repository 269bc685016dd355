"""Rewards by name: a registered name, or the dotted path of any importable callable (TRL's, open-r1's, yours),
each with its options.

``get_reward(name, **options)`` builds one; ``build_rewards(entries, context)`` builds a recipe's ``rewards`` list
with their weights; ``check_reward_names(entries)`` checks a list without building anything. The built-in rewards
register themselves (:func:`~r1lab.rewards.base.register`) when ``r1lab.rewards`` imports their modules.

A dotted path names one of two kinds of callable, told apart by its signature:

- a **reward function** takes TRL's reward keywords (a ``prompts``, ``completions`` or ``completion_ids``
  parameter, or ``**kwargs``): it is called as TRL calls it, once per batch (:class:`~r1lab.rewards.base.
  CallableReward`), and takes no options;
- any other callable is a **factory** (``trl.rewards.get_soft_overlong_punishment(max_completion_len,
  soft_punish_cache)``, a class): it is called once with the options (and the run's ``task``/``template`` when it
  has parameters of those names) and what it returns is the reward function.
"""

from __future__ import annotations

import importlib
import inspect
import math
import typing
from typing import Any

from r1lab.config import coerce
from r1lab.errors import UserError
from r1lab.rewards.base import FACTORIES, CallableReward, RewardFunction

# Keywords by which a callable shows it is a TRL reward function rather than a factory of one.
REWARD_KEYWORDS = ("prompts", "completions", "completion_ids")
# Keywords TRL's GRPOTrainer passes to every reward function on every batch (dataset columns come on top).
TRL_KEYWORDS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric")
# Keys of a recipe entry that are not options of the reward.
ENTRY_KEYS = ("name", "weight")
# Options a factory may take that the run fills in (build_rewards' context).
RUN_CONTEXT = ("task", "template")
_SIMPLE_TYPES = (bool, int, float, str)


def reward_names() -> list[str]:
    return sorted(FACTORIES)


def _import_dotted(path: str) -> Any:
    """The function a dotted path (``package.module.function`` or ``package.module:function``) names; every way the
    import can fail as one UserError naming the path and the cause (the module's own exception, its syntax error)."""
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    if not module_name or not attribute or any(not part.isidentifier() for part in module_name.split(".")):
        raise UserError(
            f"unknown reward {path!r}: not a registered name ({', '.join(reward_names())}) "
            "nor a function path such as package.module.function"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):  # the path's own module is missing
            raise UserError(
                f"unknown reward {path!r}: not a registered name ({', '.join(reward_names())}) "
                f"nor an importable function path (no module {error.name!r})"
            ) from None
        raise UserError(f"reward {path!r}: importing {module_name} failed: {_cause(error)}") from None
    except SyntaxError as error:
        raise UserError(
            f"reward {path!r}: {module_name} has a syntax error: {error.filename}:{error.lineno}: {error.msg}"
        ) from None
    except (Exception, SystemExit) as error:  # the module's own code raised (or exited) while it was imported
        raise UserError(f"reward {path!r}: importing {module_name} failed: {_cause(error)}") from None
    target = getattr(module, attribute, None)
    if target is None:
        raise UserError(f"unknown reward {path!r}: module {module_name} has no {attribute!r}")
    if not callable(target):
        raise UserError(
            f"reward {path!r} is not callable (a {type(target).__name__}): name a reward function or a factory"
        )
    return target


def _cause(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _parameters(target: Any) -> dict[str, inspect.Parameter] | None:
    """``target``'s parameters, or None when Python cannot read its signature (some builtins)."""
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return None


def _takes_any_keyword(parameters: dict[str, inspect.Parameter]) -> bool:
    return any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())


def is_reward_function(target: Any) -> bool:
    """Whether ``target`` is a TRL reward function (called per batch) rather than a factory (called with options):
    it takes ``prompts``, ``completions`` or ``completion_ids``, or ``**kwargs``. A class is always a factory
    (calling it builds the reward); a callable whose signature cannot be read is taken for a reward function."""
    if inspect.isclass(target):
        return False
    parameters = _parameters(target)
    if parameters is None:
        return True
    return _takes_any_keyword(parameters) or any(keyword in parameters for keyword in REWARD_KEYWORDS)


def _check_trl_signature(name: str, function: Any) -> None:
    """A reward function must accept every keyword TRL passes on every batch, or each batch would fail."""
    parameters = _parameters(function)
    if parameters is None or _takes_any_keyword(parameters):
        return
    missing = [keyword for keyword in TRL_KEYWORDS if keyword not in parameters]
    if missing:
        raise UserError(
            f"reward {name!r} cannot be called as TRL calls reward functions: it takes no {', '.join(missing)} "
            "(add **kwargs to its parameters)"
        )


def _option_type(parameter: inspect.Parameter, hints: dict[str, Any]) -> Any:
    """The type an option is converted to: its annotation when that is a plain bool/int/float/str (or one of them
    or None), else the type of a plain default; None when neither says (the value is passed as given)."""
    annotation = hints.get(parameter.name)
    if annotation in _SIMPLE_TYPES:
        return annotation
    arguments = typing.get_args(annotation)
    if len(arguments) == 2 and type(None) in arguments and any(a in _SIMPLE_TYPES for a in arguments):
        return annotation  # X | None
    default = parameter.default
    return type(default) if isinstance(default, _SIMPLE_TYPES) else None


def _type_hints(target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        return {}


def _checked_options(
    name: str, factory: Any, options: dict[str, Any], filled_later: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``options`` checked against the factory's parameters (unknown, missing) and converted to their types, so
    that ``max_len: many`` is an error now rather than a reward that silently scores 0 on every completion.
    ``filled_later``: parameters the run fills in (its task and template), not missing when absent here."""
    parameters = _parameters(factory)
    if parameters is None:
        return options
    named = {
        key: parameter
        for key, parameter in parameters.items()
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = [key for key in options if key not in named]
    if unknown and not _takes_any_keyword(parameters):
        shown = [key for key in named if key not in ("task", "template")]
        raise UserError(
            f"reward {name!r} has no option(s) {', '.join(unknown)} (options: {', '.join(shown) or 'none'})"
        )
    missing = [
        key
        for key, parameter in named.items()
        if parameter.default is parameter.empty and key not in options and key not in filled_later
    ]
    if missing:
        raise UserError(f"reward {name!r} needs option(s) {', '.join(missing)}")
    hints = _type_hints(factory)
    converted = dict(options)
    for key, value in options.items():
        wanted = _option_type(named[key], hints) if key in named else None
        if wanted is not None:
            converted[key] = coerce(f"reward {name!r} option {key}", value, wanted)
    return converted


def _call_factory(name: str, factory: Any, options: dict[str, Any]) -> Any:
    options = _checked_options(name, factory, options)
    try:
        return factory(**options)
    except UserError:
        raise
    except Exception as error:  # e.g. TRL's ValueError for a positive max_penalty: bad options, said in one line
        given = ", ".join(f"{key}={value!r}" for key, value in options.items() if key not in ("task", "template"))
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UserError(f"reward {name!r} rejected its options ({given or 'none'}): {reason}") from None


def _resolve(name: str) -> tuple[Any, str]:
    """The callable ``name`` stands for and its kind: ``registered`` (a factory of an r1lab scorer), ``factory``
    (an imported factory of a TRL reward function) or ``function`` (an imported TRL reward function)."""
    if name in FACTORIES:
        return FACTORIES[name], "registered"
    if "." not in name and ":" not in name:
        raise UserError(f"unknown reward {name!r}; choose one of: {', '.join(reward_names())}")
    target = _import_dotted(name)
    return target, ("function" if is_reward_function(target) else "factory")


def _option_names(target: Any, kind: str) -> set[str]:
    """The option names a reward takes (its factory's named parameters; none for a reward function)."""
    if kind == "function":
        return set()
    return set(_parameters(target) or {})


def _no_options_for_a_function(name: str, options: dict[str, Any]) -> None:
    if options:
        raise UserError(
            f"reward {name!r} is a reward function (called as TRL calls it) and takes no options "
            f"({', '.join(options)}); options are for a factory, e.g. trl.rewards.get_soft_overlong_punishment"
        )


def get_reward(name: str, **options: Any) -> RewardFunction:
    """A reward by registered name or dotted path, with its options (see the module docstring for how a
    factory is told from a reward function)."""
    target, kind = _resolve(name)
    if kind == "function":
        _no_options_for_a_function(name, options)
        if isinstance(target, RewardFunction):
            return target
        _check_trl_signature(name, target)
        return CallableReward(name, target)
    built = _call_factory(name, target, options)
    # A factory may build its own RewardFunction (batched model rewards, rewards routed by source).
    if isinstance(built, RewardFunction):
        return built
    if kind == "registered":
        return RewardFunction(name, built)
    if not callable(built):
        shown = repr(built) if len(repr(built)) <= 60 else repr(built)[:57] + "..."
        raise UserError(
            f"reward {name!r}: the factory returned {shown} (type {type(built).__name__}), not a reward function"
        )
    _check_trl_signature(name, built)
    return CallableReward(name, built)


def _parse_entry(entry: Any) -> tuple[str, dict[str, Any], Any]:
    """A recipe entry → (name, options, weight). Options are the entry's other keys and/or an ``options:``
    mapping (``{name: x, options: {a: 1}}`` = ``{name: x, a: 1}``), except for a reward that itself has an option
    named ``options`` (``routed``), which gets it as written."""
    if isinstance(entry, str):
        return entry, {}, None
    if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)):
        raise UserError(f"rewards: each entry is a name or {{name: ..., weight: ..., options: {{...}}}}, got {entry!r}")
    name, weight = entry["name"], entry.get("weight")
    if weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
    ):
        raise UserError(f"rewards: weight of {name!r} must be a finite number, got {weight!r}")
    options = {key: value for key, value in entry.items() if key not in ENTRY_KEYS}
    if "options" in options:
        target, kind = _resolve(name)
        if "options" not in _option_names(target, kind):
            nested = options.pop("options")
            if nested is None:
                nested = {}
            if not isinstance(nested, dict):
                raise UserError(f"rewards: options of {name!r} must be a mapping, got {nested!r}")
            twice = sorted(set(nested) & set(options))
            if twice:
                raise UserError(f"rewards: {name!r} option(s) {', '.join(twice)} given both inline and under options")
            options.update(nested)
    return name, options, weight


def check_reward_names(entries: Any) -> None:
    """Every reward a recipe names exists (registered, or an importable callable) and takes the options it is
    given, of the right types; nothing is built, called or loaded (a pipeline checks every GRPO stage with this
    before its first stage runs). A factory's own checks of its values run when it is built."""
    if not isinstance(entries, list) or not entries:
        raise UserError("rewards is empty: name at least one reward")
    for entry in entries:
        name, options, _ = _parse_entry(entry)
        target, kind = _resolve(name)
        if kind == "function":
            _no_options_for_a_function(name, options)
            continue
        _checked_options(name, target, options, filled_later=RUN_CONTEXT)


def build_rewards(
    entries: list[Any], context: dict[str, Any], weights: list[float] | None = None
) -> tuple[list[RewardFunction], list[float] | None]:
    """Rewards from a recipe's ``rewards`` list, each entry a name or ``{name: …, weight: …, options: {…}}``
    (options may also be written inline: ``{name: accuracy, score: 2.0}``).

    ``context`` (the run's ``task`` and ``template``) fills the options a factory names but the entry leaves
    out. Returns the functions and their weights (None: all 1.0, TRL's default).
    """
    if not entries:
        raise UserError("rewards is empty: name at least one reward")
    functions, entry_weights = [], []
    for entry in entries:
        name, options, weight = _parse_entry(entry)
        target, kind = _resolve(name)
        accepted = _option_names(target, kind)
        for key, value in context.items():
            if key in accepted and key not in options:
                options[key] = value
        functions.append(get_reward(name, **options))
        entry_weights.append(weight)
    if any(weight is not None for weight in entry_weights):
        if weights is not None:
            raise UserError("give reward weights either in the rewards entries or in reward_weights, not both")
        weights = [1.0 if weight is None else float(weight) for weight in entry_weights]
    if weights is not None and len(weights) != len(functions):
        raise UserError(f"reward_weights has {len(weights)} values for {len(functions)} rewards")
    return functions, weights
