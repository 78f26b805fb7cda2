"""The after-commit relay: hand committed outbox ids to the workers, cheaply and never fatally.

The outbox rows are already committed when this runs, so publishing is only
the fast path: one ``automation.evaluate`` message per commit (not per event),
a short connect timeout and no retries. When the broker is down the request
still succeeds and beat's ``outbox.sweep`` delivers later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery import Celery
from kombu.connection import Connection

from app import filesystem_broker
from app.config import Settings

log = logging.getLogger(__name__)

EVALUATE = "automation.evaluate"
SWEEP = "outbox.sweep"
FOLD = "rollups.fold"
DELIVER = "webhook.deliver"
WEBHOOK_SWEEP = "webhook.sweep"
# Webhook deliveries wait on other people's servers: their own queue, so they never hold up rules.
WEBHOOK_QUEUE = "webhooks"
# Redis re-delivers an unacknowledged message after this long; task time limits stay well under it.
VISIBILITY_TIMEOUT = 3600
CONNECT_TIMEOUT = 1.0
# The filesystem transport polls its folder; a listing of a few files is cheap, waiting is not.
FILESYSTEM_POLLING_INTERVAL = 0.2
FILESYSTEM_FOLDERS = {"data_folder_in": "queue", "data_folder_out": "queue",
                      "control_folder": "control", "processed_folder": "processed"}


def is_filesystem(settings: Settings) -> bool:
    return settings.celery_broker_url.startswith("filesystem://")


def state_dir(settings: Settings, name: str) -> str:
    """A folder under ``broker_dir`` (created), for broker files and beat's schedule."""
    path = Path(settings.broker_dir) / name
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def transport_options(settings: Settings) -> dict[str, Any]:
    """Web and worker must agree: the filesystem transport's folders come from ``broker_dir``."""
    if is_filesystem(settings):
        folders = {option: state_dir(settings, folder) for option, folder in FILESYSTEM_FOLDERS.items()}
        return {**folders, "polling_interval": FILESYSTEM_POLLING_INTERVAL}
    if settings.celery_broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": VISIBILITY_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT * 2}
    return {}


def broker_config(settings: Settings) -> dict[str, Any]:
    if is_filesystem(settings):
        filesystem_broker.register()  # messages that appear whole (see there)
    return {"broker_url": settings.celery_broker_url, "broker_transport_options": transport_options(settings)}


def producer_app(settings: Settings) -> Celery:
    """A Celery app that only publishes (by task name): the web process never imports ``workers``."""
    app = Celery("orchestration-relay", set_as_current=False)
    config = broker_config(settings)
    config["broker_transport_options"] = {**config["broker_transport_options"], "max_retries": 0}
    app.conf.update(config, broker_connection_timeout=CONNECT_TIMEOUT, task_serializer="json",
                    accept_content=["json"], broker_connection_retry_on_startup=False)
    return app


class Relay:
    """``Runtime.dispatcher``: called once per commit with the new outbox event ids."""

    def __init__(self, settings: Settings) -> None:
        self._app = producer_app(settings)

    def __call__(self, event_ids: Sequence[int]) -> None:
        """Raises when the broker is unreachable; the unit of work logs it and the sweep catches up."""
        if event_ids:
            self._app.send_task(EVALUATE, args=[list(event_ids)], retry=False)

    def deliver(self, delivery_ids: Sequence[int], countdown: float | None = None) -> None:
        """``Runtime.deliverer``: one ``webhook.deliver`` message per delivery, on the webhook queue."""
        for delivery_id in delivery_ids:
            self._app.send_task(DELIVER, args=[int(delivery_id)], queue=WEBHOOK_QUEUE, countdown=countdown,
                                retry=False)


def broker_status(settings: Settings) -> dict[str, Any]:
    """Can a message be handed to the broker right now? Answers within about a second."""
    transport = settings.celery_broker_url.split("://", 1)[0]
    if is_filesystem(settings):
        folder = transport_options(settings)["data_folder_out"]
        ok = os.access(folder, os.W_OK)
        return {"status": "ok" if ok else "unavailable", "transport": transport}
    try:
        with Connection(settings.celery_broker_url, connect_timeout=CONNECT_TIMEOUT,
                        transport_options=transport_options(settings)) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=CONNECT_TIMEOUT)
        return {"status": "ok", "transport": transport}
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot enqueue now"
        return {"status": "unavailable", "transport": transport, "error": type(exc).__name__}
