"""One config system: TRL's config dataclasses extended with r1lab's fields, read from a YAML recipe
and overridden from the command line (``--key value`` or ``--key=value``; lists as ``a,b`` or YAML
``[a, b]``; ``null`` for None). Every value is checked against its field's type before anything loads."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import types
import typing
from typing import Any

import yaml

from r1lab.errors import UserError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def read_yaml_mapping(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"{path}{where}: broken YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read config file {path}: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: a config must be a mapping of field: value, got {type(loaded).__name__}")
    return loaded


def parse_overrides(arguments: list[str]) -> dict[str, str | bool]:
    """``--key value`` / ``--key=value`` / a bare ``--flag`` (true) → {key: raw string or True}."""
    overrides: dict[str, str | bool] = {}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("--") or len(argument) == 2:
            raise UserError(f"unexpected argument {argument!r}: overrides are written --key value")
        key, equals, value = argument[2:].partition("=")
        key = key.replace("-", "_")
        if equals:
            overrides[key] = value
        elif index + 1 < len(arguments) and not arguments[index + 1].startswith("--"):
            overrides[key] = arguments[index + 1]
            index += 1
        else:
            overrides[key] = True
        index += 1
    return overrides


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    default_factory: Any = dataclasses.MISSING,
    minimum: float | None = None,
    maximum: float | None = None,
):
    """A config field declared once: its default, a one-line ``help`` (``r1lab <command> --help`` prints it) and the
    bounds a number must keep (``minimum`` / ``maximum``, inclusive); its type annotation (``Literal[...]`` for a
    fixed set of values) says what else is allowed. :func:`build_config` refuses what the declaration forbids, NaN
    and infinity included, with one line naming the field."""
    metadata = {"help": help, "minimum": minimum, "maximum": maximum}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check_bounds(key: str, value: Any, metadata: Any) -> None:
    """A number given for ``key``: finite, and within the field's declared ``minimum`` / ``maximum``."""
    if isinstance(value, (list, tuple)):
        for item in value:
            check_bounds(key, item, None)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value != value or value in (float("inf"), float("-inf")):
        raise UserError(f"{key} must be a finite number, got {value}")
    minimum, maximum = (metadata or {}).get("minimum"), (metadata or {}).get("maximum")
    if minimum is not None and value < minimum:
        raise UserError(f"{key} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UserError(f"{key} must be at most {maximum}, got {value}")


def literal_choices(annotation: Any) -> tuple | None:
    """The values a ``Literal[...]`` (or ``Literal[...] | None``) annotation allows; None for any other type."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            if typing.get_origin(option) is typing.Literal:
                return (*typing.get_args(option), None)
    return None


def check_declared(config) -> None:
    """Every field of a built config against its declaration (a fixed set of values, bounds, finite numbers): what
    :func:`build_config` checks, for a config built in code too. Stage checks call it first."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        choices = literal_choices(hints.get(field.name))
        if choices is not None and value not in choices:
            allowed = ", ".join(str(choice) for choice in choices if choice is not None)
            raise UserError(f"{field.name} must be one of {allowed}, got {value!r}")
        if field.metadata.get("minimum") is not None or field.metadata.get("maximum") is not None:
            check_bounds(field.name, value, field.metadata)


def field_help(config_class: type) -> dict[str, str]:
    """Each field's help line: r1lab's ``setting(help=...)`` or TRL's / transformers' own ``metadata['help']``."""
    return {
        field.name: " ".join(str(field.metadata.get("help") or "").split())
        for field in dataclasses.fields(config_class)
    }


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` (YAML values or command-line strings), or a UserError."""
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if type(None) in options and (value is None or (isinstance(value, str) and value.lower() in ("null", "none"))):
            return None
        problems = []
        # Prefer the option that already matches the value's type.
        ordered = sorted(options, key=lambda option: 0 if isinstance(option, type) and isinstance(value, option) else 1)
        for option in ordered:
            if option is type(None):
                continue
            try:
                return coerce(key, value, option)
            except UserError as error:
                problems.append(str(error))
        if len(problems) == 1:
            raise UserError(problems[0])
        raise UserError(f"{key}: {value!r} is not a valid {_type_name(annotation)}")
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise UserError(f"{key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    if origin in (list, tuple) or annotation in (list, tuple):
        if isinstance(value, str):
            if value.strip().startswith("["):
                try:
                    value = yaml.safe_load(value)
                except yaml.YAMLError:
                    raise UserError(f"{key}: expected a list such as [a, b] or a,b, got {value!r}") from None
            else:
                value = [part for part in value.split(",") if part]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{key}: expected a list, got {value!r}")
        item_types = typing.get_args(annotation)
        if item_types and item_types[0] is not Ellipsis:
            return [coerce(key, item, item_types[0]) for item in value]
        return list(value)
    if origin is dict or annotation is dict:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise UserError(f"{key}: expected a mapping such as {{a: 1}}, got {value!r}") from None
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a mapping, got {value!r}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise UserError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise UserError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise UserError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{key}: expected a string, got {value!r}")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if isinstance(value, annotation):
            return value
        allowed = tuple(member.value for member in annotation)
        if value not in allowed:
            raise UserError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise UserError(f"{key}: expected {_type_name(annotation)}, got {value!r}")
    return value


def field_types(config_class: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_class)
    return {field.name: hints.get(field.name, Any) for field in dataclasses.fields(config_class) if field.init}


def build_config(config_class: type, values: dict[str, Any], source: str = "config"):
    """An instance of ``config_class`` from a dict, every key known and every value of its field's type."""
    types_by_name = field_types(config_class)
    metadata = {field.name: field.metadata for field in dataclasses.fields(config_class)}
    coerced = {}
    for key, value in values.items():
        if key not in types_by_name:
            close = difflib.get_close_matches(key, types_by_name, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"{source}: unknown config key {key!r}{hint}")
        coerced[key] = coerce(key, value, types_by_name[key])
        check_bounds(key, coerced[key], metadata[key])
    try:
        return config_class(**coerced)
    except UserError:
        raise
    except (ValueError, TypeError, KeyError, NotImplementedError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{source}: invalid settings: {message}") from None


def load_config(config_class: type, config_path: str | None, overrides: dict[str, Any]):
    """YAML recipe (if any) with command-line overrides applied on top."""
    values = read_yaml_mapping(config_path) if config_path else {}
    values.update(overrides)
    return build_config(config_class, values, source=config_path or "command line")


def config_to_dict(config) -> dict[str, Any]:
    """A JSON-safe dict of every field (for manifests and summaries)."""
    result = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, enum.Enum):
            value = value.value
        if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
            value = str(value)
        result[field.name] = value
    return result
