"""The session-wide token watch catches a token in any captured output, and the log redaction masks one."""

from __future__ import annotations

import secrets
from types import SimpleNamespace
from typing import Any

from app.logs import redact
from tests.token_watch import issued_tokens, leaks, remember_token, watch_report


def test_a_token_in_a_test_report_is_caught_and_a_clean_report_is_not() -> None:
    token = remember_token(secrets.token_urlsafe(32))
    try:
        clean: Any = SimpleNamespace(nodeid="fake::clean", sections=[("Captured log call", "nothing here")],
                                     longrepr=None)
        leaking: Any = SimpleNamespace(nodeid="fake::leak", sections=[], longrepr=f"assert 'Bearer {token}'")
        watch_report(clean)
        watch_report(leaking)
        assert "fake::leak" in leaks and "fake::clean" not in leaks
    finally:
        leaks.discard("fake::leak")
        issued_tokens.discard(token)


def test_redaction_masks_credential_fields_and_bearer_text_at_any_depth() -> None:
    token = secrets.token_urlsafe(32)
    event = redact(None, "info", {"event": f"sent Authorization: Bearer {token}", "token": token,
                                  "headers": {"Authorization": f"Bearer {token}", "X-Api-Key": token},
                                  "params": [{"url": "https://h", "secret": "whsec_abc"}], "note": f"whsec_{token}",
                                  "token_id": 7})
    assert token not in repr(event) and "whsec_abc" not in repr(event)
    assert event["token_id"] == 7 and event["params"][0]["url"] == "https://h"
