"""ORCH_SNAPSHOT_EVERY reaches the append: snapshots land every N events of a stream."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app import create_app
from app.config import Settings
from app.services import tokens
from app.store.tables import Snapshot
from tests.conftest import make_settings
from tests.support import Api, wipe


def test_snapshots_are_taken_at_the_configured_interval(database_url: str, tmp_path: Path) -> None:
    assert Settings.from_env({"ORCH_SNAPSHOT_EVERY": "2"}).snapshot_every == 2
    app = create_app(make_settings(database_url, tmp_path, snapshot_every=2))
    runtime = app.extensions["orchestration"]
    wipe(runtime.engine)
    api = Api(app.test_client(), {"admin": tokens.create_token("user:admin", "admin", runtime.uow(), runtime.clock)})
    api.create_task("T-SNAP")
    for progress in (10, 20, 30, 40):
        api.update_task("T-SNAP", progress=progress)

    with runtime.read_uow() as uow:
        sequences = uow.session.scalars(select(Snapshot.sequence).order_by(Snapshot.sequence)).all()
    assert sequences == [2, 4]
    runtime.engine.dispose()
