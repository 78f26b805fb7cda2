"""The quick start's ``filesystem://`` broker: a consumer never takes a message before it is whole."""

from __future__ import annotations

import contextlib
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import resolve_transport

from app import filesystem_broker


@pytest.fixture
def channel(tmp_path: Path) -> Any:
    filesystem_broker.register()
    folder = str(tmp_path / "queue")
    Path(folder).mkdir()
    options = {"data_folder_in": folder, "data_folder_out": folder, "processed_folder": str(tmp_path)}
    with Connection("filesystem://", transport_options=options) as connection:
        yield connection.default_channel


def test_filesystem_urls_use_the_transport_that_writes_aside_then_renames() -> None:
    filesystem_broker.register()
    assert resolve_transport("filesystem") is filesystem_broker.Transport


def test_a_consumer_polling_while_a_message_is_written_takes_nothing_then_the_whole_message(
        channel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen_while_writing: list[Any] = []
    rename = filesystem_broker.os.replace

    def poll_then_rename(partial: str, final: str) -> None:
        assert Path(partial).stat().st_size > 0  # written, not yet visible under a queue's name
        with contextlib.suppress(Empty):  # what a consumer finds no message with
            seen_while_writing.append(channel._get("jobs"))
        rename(partial, final)

    monkeypatch.setattr(filesystem_broker.os, "replace", poll_then_rename)
    channel._put("jobs", {"body": "whole", "n": 1})

    assert seen_while_writing == []
    assert channel._get("jobs") == {"body": "whole", "n": 1}
