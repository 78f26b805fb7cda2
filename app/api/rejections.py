"""``validation_failed``: a refused change to an existing entity leaves an event.

Views that change an entity say so with ``@records_rejections(entity type)``
(right under ``@blp.route``, so the mark is on the registered view); the
after-request hook sees the problem the error handlers answered with and, for
a 409 or 422, records it through the tracking use case. The problem formatter
itself only formats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from app.api.context import change_context_for_rejection, runtime
from app.services import tracking

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])
MARK = "records_rejections_of"
RECORDED_STATUSES = (409, 422)


def records_rejections(entity_type: str) -> Callable[[View], View]:
    """Mark a view whose refused requests (409/422) record ``<entity type>.validation_failed``."""

    def mark(view: View) -> View:
        setattr(view, MARK, entity_type)
        return view

    return mark


def record_rejection(response: Response) -> Response:
    """After-request hook: record the refusal a marked view answered, in its own transaction."""
    view = current_app.view_functions.get(request.endpoint or "")
    entity_type: str | None = getattr(view, MARK, None)
    problem: dict[str, Any] | None = g.get("problem")
    if entity_type is None or problem is None or g.get("principal") is None \
            or response.status_code not in RECORDED_STATUSES:
        return response
    rt = runtime()
    try:
        tracking.record_rejection(entity_type, (request.view_args or {}).get("code", ""), response.status_code,
                                  problem["detail"], problem.get("errors"), change_context_for_rejection(),
                                  rt.uow(), rt.clock)
    except Exception:  # noqa: BLE001 - the rejection itself must still be answered
        log.warning("could not record validation_failed", exc_info=True)
    return response


def init(app: Flask) -> None:
    app.after_request(record_rejection)
