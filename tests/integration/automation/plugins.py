"""Rules defined in code for the tests, imported by the worker only (ORCH_AUTOMATION_MODULES).

They fire on ``custom.test.*`` events alone, so they never touch other tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from app.domain.rule_actions import AppendEvent, Effect, Facts
from app.services import automation
from app.services.rule_registry import register_rule

SLOW_SECONDS = 60


def slow_then_mark(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    """First attempt: leave a marker and hang (the test kills the worker here); later attempts apply.

    ``data.seconds`` shortens the hang, for a test that lets the attempt finish.
    """
    marker = Path(event["data"]["marker"])
    if not marker.exists():
        marker.write_text("started")
        time.sleep(float(event["data"].get("seconds", SLOW_SECONDS)))
    entity = event["entity"]
    return [AppendEvent(entity["type"], entity["code"], "custom.test.slow_done", {})]


def always_unavailable(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    """A database that never answers: the transient error every retry meets."""
    raise OperationalError("SELECT 1", {}, ConnectionError("simulated: the database went away"))


register_rule({"type": "custom.test.slow"}, slow_then_mark, name="test_slow_marker",
              description="test only: hangs on its first attempt")
register_rule({"type": "custom.test.fail"}, always_unavailable, name="test_always_unavailable",
              description="test only: fails with a transient error every time")
register_rule({"type": "custom.test.poison"}, {"name": "emit_event", "params": {"type": "custom.test.never"}},
              name="test_poison_target", description="test only: its trigger can never be processed")

_real_envelope = automation.envelope


def _envelope_or_poison(event: Any) -> Any:
    """A poison message: ``custom.test.poison`` events fail to decode in the worker, on every delivery,
    as an event the API accepted but the worker cannot read would (not a transient database error)."""
    if event.type == "custom.test.poison":
        raise ValueError("simulated: this event cannot be decoded")
    return _real_envelope(event)


automation.envelope = _envelope_or_poison  # type: ignore[assignment]
