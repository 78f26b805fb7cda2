"""Actor kinds: who acted, coarsely (CONTRACT §2): the prefix of ``actor`` before ``:``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

NAMED_KINDS = ("user", "agent", "automation")
OTHER = "other"
ACTOR_KINDS = (*NAMED_KINDS, OTHER)


def actor_kind(actor: str | None) -> str:
    """``user:alice`` → ``user``; anything without a known prefix is ``other``."""
    prefix, sep, _ = (actor or "").partition(":")
    return prefix if sep and prefix in NAMED_KINDS else OTHER


def kind_prefix(kind: str) -> str:
    """The ``actor`` prefix a named kind stands for (``user`` → ``user:``)."""
    return f"{kind}:"


def by_actor_kind(by_actor: Mapping[str, int]) -> dict[str, int]:
    """Counts by actor folded into counts by kind: exact, since each actor has exactly one kind."""
    found: Counter[str] = Counter()
    for actor, n in by_actor.items():
        found[actor_kind(actor)] += n
    return dict(sorted(found.items()))
