"""The closed vocabularies of automation: how a rule run ended, what a match decided,
how a webhook attempt went, and what reverting a session did to each entity.

``StrEnum``s whose values are the strings the contract and the database rows
have always held, so a member compares equal to, and serializes as, its string.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """``automation_rule_runs.status`` (CONTRACT §2, ``/rules/runs``)."""

    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"  # transient: the next delivery of the event evaluates the rule again
    DEAD = "dead"
    LOOP = "loop"
    UNDONE = "undone"
    DELIVERING = "delivering"  # a webhook run whose delivery is still being attempted


# A run in this state is evaluated again when its event comes back; every other state is final for it.
RETRYABLE = RunStatus.FAILED
# States a dead-lettered event leaves alone: the run already ended (``delivering`` has its own retries).
FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.LOOP, RunStatus.DEAD, RunStatus.UNDONE})


class Verdict(StrEnum):
    """What a matching rule is to do with an event: act, or stop at the causation depth limit."""

    APPLY = "apply"
    LOOP = "loop"


class AttemptOutcome(StrEnum):
    """``webhook_attempts.outcome``: how one POST of a delivery went."""

    SUCCEEDED = "succeeded"
    REFUSED = "refused"  # the host is not allowed: never sent
    REDIRECT = "redirect"  # never followed: the URL must name the endpoint itself
    RETRY = "retry"
    REJECTED = "rejected"


class RevertStatus(StrEnum):
    """What reverting a session did to one entity (``/sessions/{key}/revert``)."""

    PLANNED = "planned"
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    SKIPPED = "skipped"
    FAILED = "failed"
