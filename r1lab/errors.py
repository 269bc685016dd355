"""The one exception type that the CLI turns into a single error line and exit code 2, and the machine's
refusals (a full disk, a read-only directory) that it reports the same way."""

from __future__ import annotations

import errno

# OSErrors that say the machine refused a write, not that r1lab has a bug: one line, exit 2.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
# The same refusals as libraries written in Rust or C++ word them (safetensors, torch.save).
_ENVIRONMENT_TEXT = {
    "No space left on device": errno.ENOSPC,
    "StorageFull": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
}


class UserError(Exception):
    """Bad input from the user: a config, a path, a name. Its message is shown as one line, no traceback."""


def environment_error(error: BaseException) -> str | None:
    """One line for a write the machine refused (anywhere in ``error``'s chain), else None."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = current.errno if isinstance(current, OSError) else None
        if code not in ENVIRONMENT_ERRNOS:
            code = next((value for text, value in _ENVIRONMENT_TEXT.items() if text in str(current)), None)
        if code is not None:
            where = getattr(current, "filename", None)
            message = ENVIRONMENT_ERRNOS[code] + (f": {where}" if isinstance(where, str) and where else "")
            if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                message += "; free some space and run again (training stages continue from their last checkpoint with --resume true)"
            return message
        current = current.__cause__ or current.__context__
    return None
