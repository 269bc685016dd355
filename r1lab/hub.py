"""The Hugging Face hub, checked before anything waits on it: without a network, the hub libraries retry for tens
of seconds before they fail (about 35 s for a dataset, 50 s for a model, measured here), so a run that needs
the hub asks first whether it can reach it (a TCP connection, a few seconds at most) and says so in one line
when it cannot. ``HF_HUB_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE`` / ``TRANSFORMERS_OFFLINE``) means the local
cache only: the hub libraries then read it without touching the network. ``HF_ENDPOINT`` names a mirror."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from r1lab.errors import UserError

DEFAULT_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT_S = 3.0
_TRUE = {"1", "true", "yes", "on"}


def offline_mode() -> bool:
    """Whether the environment asks the hub libraries to use their local cache only."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in names)


def endpoint() -> tuple[str, int]:
    """(host, port) of the hub: ``HF_ENDPOINT`` or huggingface.co."""
    parsed = urlparse(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    return parsed.hostname or "huggingface.co", parsed.port or (80 if parsed.scheme == "http" else 443)


def reachable(timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub opens within ``timeout`` seconds (a name that does not resolve fails at
    once)."""
    try:
        with socket.create_connection(endpoint(), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(what: str) -> None:
    """A UserError, within a few seconds, when ``what`` (e.g. ``model org/name``) must come from the hub and cannot."""
    host, _ = endpoint()
    if offline_mode():
        raise UserError(f"{what} is not in the local cache and HF_HUB_OFFLINE is set: give a local path, or unset it")
    if not reachable():
        raise UserError(f"cannot reach the Hugging Face hub ({host}) for {what}: no network? give a local path")


def cached_model_dir(repo_id: str) -> str | None:
    """The local snapshot of a hub model already downloaded (its config.json cached), else None."""
    from huggingface_hub import (  # heavy: imported when a hub id is used
        snapshot_download,
        try_to_load_from_cache,
    )

    if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return None
    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # partly cached: let the hub libraries decide
        return None
