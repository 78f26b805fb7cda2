"""Actor kinds (the prefix of ``actor`` before ``:``) filter lists, stats and timelines alike."""

from __future__ import annotations

from typing import Any

from app.services import tokens
from tests.support import Api

KINDS = {"user": "user:admin", "agent": "agent:coder", "other": "service:ci"}


def test_actor_kind_filters_lists_stats_and_timelines_and_stats_count_by_kind(api: Api, runtime: Any) -> None:
    api.tokens["agent"] = tokens.create_token("agent:coder", "writer", runtime.uow(), runtime.clock)
    api.tokens["other"] = tokens.create_token("service:ci", "writer", runtime.uow(), runtime.clock)
    api.create_task("K-1")
    for role, n in (("agent", 2), ("other", 1)):
        for i in range(n):
            assert api.patch("/tasks/K-1", role=role, json={"progress": 10 * i + len(role)}).status_code == 200

    stats = api.get("/events/stats").get_json()
    assert stats["by_actor_kind"] == {"agent": 2, "other": 1, "user": 1}
    for kind, expected in (("agent", 2), ("other", 1), ("user", 1), ("automation", 0)):
        listed = api.events(actor_kind=kind)
        assert len(listed) == expected and all(KINDS.get(kind) == e["actor"] for e in listed), kind
        counted = api.get("/events/stats", query_string={"actor_kind": kind}).get_json()
        assert counted["total"] == expected
        assert counted["by_actor_kind"] == ({kind: expected} if expected else {})
        line = api.get("/events/timeline", query_string={"actor_kind": kind, "bucket": "day"}).get_json()
        assert sum(b["count"] for b in line["buckets"]) == expected
        assert len(api.events("/events/entity/task/K-1", actor_kind=kind)) == expected


def test_an_unknown_actor_kind_is_a_422(api: Api) -> None:
    for path in ("/events", "/events/stats", "/events/timeline"):
        response = api.get(path, query_string={"actor_kind": "robot"})
        assert response.status_code == 422 and "actor_kind" in response.get_json()["errors"]
