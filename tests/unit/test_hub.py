"""Without the hub, a run that needs it says so in one line within seconds instead of retrying for a minute."""

from __future__ import annotations

import socket
import time

import pytest

from r1lab import hub
from r1lab.cli import main as cli_main
from r1lab.errors import UserError
from r1lab.models import load_tokenizer, resolve_model


@pytest.fixture
def unreachable_hub(monkeypatch):
    """A hub endpoint nothing listens on (connection refused at once), offline flags unset."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", "/nonexistent-r1lab-test-cache")  # nothing cached


def test_offline_mode_reads_the_environment(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    assert not hub.offline_mode()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert hub.offline_mode()
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        hub.require_hub("dataset 'x/y'")


def test_the_endpoint_is_reachable_when_something_listens(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.endpoint() == ("127.0.0.1", server.getsockname()[1]) and hub.reachable()


def test_an_unreachable_hub_fails_a_hub_model_at_once(unreachable_hub):
    started = time.monotonic()
    assert resolve_model("org/model") == "org/model"  # naming a hub model needs no network; loading it does
    with pytest.raises(UserError, match=r"cannot reach the Hugging Face hub \(127.0.0.1\) for model org/model"):
        load_tokenizer("org/model")
    assert time.monotonic() - started < 5


def test_an_unreachable_hub_fails_a_hub_dataset_at_once_from_the_cli(unreachable_hub, tmp_path, capsys):
    started = time.monotonic()
    code = cli_main(
        [
            "eval",
            "--model",
            "embedded",
            "--task",
            "jsonl",
            "--dataset",
            "org/dataset",
            "--output_dir",
            str(tmp_path / "e"),
        ]
    )
    assert code == 2 and time.monotonic() - started < 10
    assert "cannot reach the Hugging Face hub (127.0.0.1) for dataset 'org/dataset'" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
