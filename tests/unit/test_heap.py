"""Server processes freeze what they loaded, so full collections skip it; new garbage is still collected."""

from __future__ import annotations

import gc
import runpy
import weakref
from pathlib import Path

import pytest

from app import heap

ROOT = Path(__file__).resolve().parents[2]


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def unfrozen() -> object:
    gc.unfreeze()
    yield None
    gc.unfreeze()  # the test process goes on as it was


def test_freezing_exempts_what_exists_and_still_collects_what_comes_after(unfrozen: object) -> None:
    heap.freeze_loaded_objects()
    assert gc.get_freeze_count() > 0
    later = Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None


def test_gunicorn_workers_freeze_once_the_app_is_loaded(unfrozen: object, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the config file's defaults stay out of the env
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    hooks["post_worker_init"](object())
    assert gc.get_freeze_count() > 0
