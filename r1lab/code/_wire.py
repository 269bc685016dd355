"""Values between the judge and the candidate, as plain data (stdlib only: the sandboxed scripts import it).

A value crosses as JSON with tags, and comes out the other side built only from the exact builtin types
(None, bool, int, float, complex, str, bytes, list, tuple, set, frozenset, dict): whatever the candidate's
process sends, the judge compares values the candidate cannot have overridden (no ``__eq__`` of its own, no
subclass). JSON objects only ever hold one tag: ``t`` tuple, ``s`` set, ``f`` frozenset, ``d`` dict (a list of
pairs), ``b`` bytes (hex), ``c`` complex.
"""

import json

MAX_DEPTH = 64


def encode(value, depth=0):
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"t": [encode(item, depth + 1) for item in value]}
    if kind is set or kind is frozenset:
        return {"s" if kind is set else "f": [encode(item, depth + 1) for item in value]}
    if kind is dict:
        return {"d": [[encode(key, depth + 1), encode(item, depth + 1)] for key, item in value.items()]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    raise TypeError(f"a {kind.__name__} cannot cross the sandbox (plain data only)")


def decode(data, depth=0):
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode(item, depth + 1) for item in data]
    if kind is not dict or len(data) != 1:
        raise ValueError("malformed value")
    ((tag, body),) = data.items()
    if tag == "b" and type(body) is str:
        return bytes.fromhex(body)
    if tag == "c" and type(body) is list and len(body) == 2 and all(type(part) in (int, float) for part in body):
        return complex(body[0], body[1])
    if type(body) is not list:
        raise ValueError("malformed value")
    if tag == "t":
        return tuple(decode(item, depth + 1) for item in body)
    if tag == "s":
        return {decode(item, depth + 1) for item in body}
    if tag == "f":
        return frozenset(decode(item, depth + 1) for item in body)
    if tag == "d":
        pairs = [decode(pair, depth + 1) for pair in body]
        if not all(type(pair) is list and len(pair) == 2 for pair in pairs):
            raise ValueError("malformed dict")
        return dict(pairs)
    raise ValueError(f"unknown tag {tag!r}")


def dumps(message):
    return json.dumps(message, separators=(",", ":")) + "\n"


def loads(line):
    message = json.loads(line)
    if type(message) is not dict:
        raise ValueError("malformed message")
    return message
