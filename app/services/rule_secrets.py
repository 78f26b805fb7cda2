"""Webhook secrets are write-only: stored in the rule, never answered, kept across edits, rotated on change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.domain import webhook_spec as spec
from app.domain.errors import Invalid

WEBHOOK = "webhook"
HIDDEN = ("secret", "previous_secret", "previous_until")


def redacted(action: dict[str, Any] | None) -> dict[str, Any]:
    """The action as callers see it: a webhook's params without any secret (``secret_set`` instead)."""
    action = dict(action or {})
    if action.get("name") != WEBHOOK:
        return action
    params = dict(action.get("params") or {})
    rotating = bool(params.get("previous_secret"))
    shown = {k: v for k, v in params.items() if k not in HIDDEN}
    return {**action, "params": {**shown, "secret_set": "secret" in params, "rotating": rotating}}


def check_destination(action: dict[str, Any], allowed_hosts: tuple[str, ...]) -> None:
    """Refused at creation (422) when the host is not in ``ORCH_WEBHOOK_ALLOWED_HOSTS``."""
    if action.get("name") != WEBHOOK:
        return
    url = str(action["params"]["url"])
    if not spec.host_allowed(url, allowed_hosts):
        host, port = spec.host_and_port(url)
        raise Invalid("the webhook's host is not allowed",
                      {"action": [f"params.url: {host}:{port} is not in ORCH_WEBHOOK_ALLOWED_HOSTS"]})


def with_kept_secret(patch: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """A webhook patch that names no secret keeps the stored one (callers cannot read it back)."""
    action = patch.get("action")
    if not isinstance(action, dict) or action.get("name") != WEBHOOK or (stored or {}).get("name") != WEBHOOK:
        return patch
    params = dict(action.get("params") or {})
    if "secret" not in params and "secret" in (stored or {}).get("params", {}):
        params["secret"] = stored["params"]["secret"]  # type: ignore[index]
    return {**patch, "action": {**action, "params": params}}


def rotated(action: dict[str, Any], stored: dict[str, Any] | None, now: datetime,
            window: float) -> dict[str, Any]:
    """A new secret keeps the old one signing for ``window`` seconds; the same secret keeps any rotation."""
    if action.get("name") != WEBHOOK or (stored or {}).get("name") != WEBHOOK:
        return action
    old = dict((stored or {}).get("params") or {})
    params = dict(action["params"])
    if old.get("secret") and old["secret"] != params["secret"]:
        params["previous_secret"] = old["secret"]
        params["previous_until"] = (now + timedelta(seconds=window)).isoformat()
    elif old.get("previous_secret"):
        params["previous_secret"], params["previous_until"] = old["previous_secret"], old.get("previous_until")
    return {**action, "params": params}
