"""The automation vocabularies are Enums whose values are the strings rows and answers have always held."""

from __future__ import annotations

import json

from app.domain.rules import Trigger, evaluate_rules
from app.domain.runs import FINISHED, RETRYABLE, AttemptOutcome, RevertStatus, RunStatus, Verdict
from tests.unit.test_rules import envelope, rule


def test_the_values_are_the_stored_strings() -> None:
    assert [s.value for s in RunStatus] == ["succeeded", "skipped", "failed", "dead", "loop", "undone", "delivering"]
    assert [v.value for v in Verdict] == ["apply", "loop"]
    assert [o.value for o in AttemptOutcome] == ["succeeded", "refused", "redirect", "retry", "rejected"]
    assert [s.value for s in RevertStatus] == ["planned", "applied", "unchanged", "conflict", "skipped", "failed"]


def test_a_member_is_its_string_in_comparisons_sets_and_json() -> None:
    assert RunStatus.DEAD == "dead" and "dead" in FINISHED and "failed" not in FINISHED and RETRYABLE == "failed"
    assert json.dumps({"status": RunStatus.DELIVERING, RevertStatus.APPLIED: 1}) == '{"status": "delivering", "applied": 1}'
    assert f"{RunStatus.LOOP}" == "loop"


def test_a_match_at_the_depth_limit_is_a_loop_verdict() -> None:
    rules = [rule("a", Trigger("orchestration.task.*"))]
    [stopped] = evaluate_rules(envelope(), rules, depth=5, depth_limit=5)
    [applied] = evaluate_rules(envelope(), rules, depth=0, depth_limit=5)
    assert stopped.verdict is Verdict.LOOP and applied.verdict is Verdict.APPLY
