"""One Celery app for worker and beat, wired to a Runtime built from the environment.

Not Flask's ``celery_init_app``: the worker needs no web app, only the
settings, the engine and the relay (effects are dispatched like the API's).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from app import heap
from app.config import Settings
from app.relay import Relay
from app.runtime import Runtime
from app.services import rule_registry

log = logging.getLogger(__name__)

settings = Settings.from_env()
celery = Celery("orchestration")
celery.config_from_object("celeryconfig")

# Rules and actions defined in code by extra modules (ORCH_AUTOMATION_MODULES).
for _module in settings.automation_modules:
    importlib.import_module(_module)

relay = Relay(settings)
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """Built on first use, so importing ``workers`` (beat, tests) opens no connection."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.build(settings)
        _runtime.dispatcher = relay
        _runtime.deliverer = relay.deliver
    return _runtime


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """Connections must not cross a fork.

    A pool process also leaves its parent's process group: honcho (and
    systemd's default KillMode) send SIGTERM to the whole group, which would
    kill the pool process mid-job ("exited with signal 15") while the parent
    starts its warm shutdown. Out of the group, only the parent hears it, lets
    the job in flight finish, then stops the pool itself.
    """
    if _runtime is not None:
        _runtime.dispose_after_fork()
    os.setpgid(0, 0)
    heap.freeze_loaded_objects()  # full GC passes skip what the pool process inherited (app/heap.py)


@worker_ready.connect
def _seed_rules(**_: Any) -> None:
    """The built-in rules exist from the worker's start (insert-if-missing, idempotent)."""
    rt = runtime()
    try:
        with rt.uow() as uow:
            rule_registry.ensure_rules(uow, rt.clock)
            uow.commit()
    except Exception:  # noqa: BLE001 - not migrated yet: evaluation seeds them later
        log.warning("could not seed the built-in rules at start", exc_info=True)
