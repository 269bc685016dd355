"""The candidate's side (stdlib only, runs sandboxed): run the program, then answer the judge's calls.

``python -I _candidate.py REQUEST_FD REPLY_FD``: executes ``preamble.py`` then ``solution.py`` in one namespace
(``__name__`` is ``solution``, so a ``__main__`` block does not run), says which callables it defines, then for
each request ``{"call": name, "args": [...], "kwargs": {...}}`` replies ``{"ok": value}`` or ``{"raise": type,
"message": text}``. Everything here runs inside the candidate's reach, and nothing needs to be trusted: the
judge, in another process, reads the replies as plain data (:mod:`_wire`) and decides.
"""

import builtins
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _wire


def main():
    requests = os.fdopen(int(sys.argv[1]), "r", encoding="utf-8")
    replies = os.fdopen(int(sys.argv[2]), "w", encoding="utf-8")
    namespace: dict = {"__name__": "solution", "__builtins__": builtins}  # what the program defines
    try:
        for name in ("preamble.py", "solution.py"):
            with open(name, encoding="utf-8") as handle:
                exec(compile(handle.read(), name, "exec"), namespace)
    except BaseException as error:
        replies.write(_wire.dumps({"error": f"{type(error).__name__}: {error}"[:500]}))
        replies.flush()
        return
    names = sorted(name for name, value in namespace.items() if callable(value) and not name.startswith("__"))
    replies.write(_wire.dumps({"names": names}))
    replies.flush()
    for line in requests:
        request = _wire.loads(line)
        try:
            function = namespace[request["call"]]
            result = function(*_wire.decode(request["args"]), **_wire.decode(request["kwargs"]))
            reply = {"ok": _wire.encode(result)}
        except BaseException as error:
            reply = {"raise": type(error).__name__, "message": str(error)[:500]}
        replies.write(_wire.dumps(reply))
        replies.flush()


if __name__ == "__main__":
    main()
