"""Session report and revert plan as text, for operators at a terminal (the CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _ref(entity: dict[str, Any]) -> str:
    return f"{entity['type']} {entity['code'] or entity['id']}"


def _changes(changes: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{name} {c['before']!r} → {c['after']!r}" for name, c in changes.items()) or "no field changes"


def report_lines(report: dict[str, Any]) -> Iterator[str]:
    session, events = report["session"], report["events"]
    yield (f"session {session['session_key']}: agent {session['agent_id']}, {session['status']}, "
           f"started {session['started_at']}, ended {session['ended_at']}, "
           f"duration {session['duration_seconds']}s")
    kinds = ", ".join(f"{k} {n}" for k, n in events["by_actor_kind"].items())
    yield f"events: {events['total']} ({kinds}); log read up to event {report['as_of_event_id']}"
    for event_type, n in events["by_type"].items():
        yield f"  {n:>6}  {event_type}"
    yield from _list_lines("entities touched", report["entities"], _entity_line)
    yield from _list_lines("refused attempts", report["refused"],
                           lambda r: f"{_ref(r['entity'])}: {r['status']} {r['detail']} ({r['timestamp']})")
    yield from _blast_lines(report["blast_radius"])
    yield f"activity: {len(report['activity'])} active minutes"
    for minute in report["activity"]:
        yield f"  {minute['minute']}  {minute['count']}"


def _entity_line(item: dict[str, Any]) -> str:
    return f"{_ref(item['entity'])} ({item['events']} events): {_changes(item['changes'])}"


def _list_lines(title: str, page: dict[str, Any], line: Any) -> Iterator[str]:
    yield f"{title}: {page['total']}"
    for item in page["items"]:
        yield f"  {line(item)}"
    if page["next"]:
        yield f"  … and {page['total'] - len(page['items'])} more (GET /sessions/{{key}}/report pages them)"


def _blast_lines(blast: dict[str, Any]) -> Iterator[str]:
    runs = ", ".join(f"{rule} {statuses}" for rule, statuses in blast["rule_runs"]["by_rule"].items()) or "none"
    yield f"blast radius: {blast['events']} caused events, depth up to {blast['max_depth']}; rule runs: {runs}"
    for item in blast["items"]:
        yield (f"  {'  ' * (item['depth'] - 1)}depth {item['depth']}: {item['type']} on {_ref(item['entity'])} "
               f"by {item['actor']}")
    yield from _list_lines("entities changed by automation", blast["entities"], _entity_line)


def revert_lines(result: dict[str, Any]) -> Iterator[str]:
    mode = "dry run: nothing written" if result["dry_run"] else "applied"
    yield f"revert of session {result['session_key']} ({mode}); summary {result['summary']}"
    for item in result["entities"]:
        fields = "; ".join(f"{n} {f['current']!r} → {f['target']!r}" for n, f in item["fields"].items())
        detail = f" ({item['detail']})" if item["detail"] else ""
        yield f"  {item['status']:<9} {_ref(item['entity'])}: {fields or 'nothing to change'}{detail}"
    for conflict in result["conflicts"]:
        who = ", ".join(c["actor"] for c in conflict["changed_by"])
        verb = "overwritten (force)" if conflict["forced"] else "left alone"
        yield (f"  conflict  {_ref(conflict['entity'])}.{conflict['field']}: now {conflict['current']!r}, "
               f"before the session {conflict['target']!r}; changed since by {who}: {verb}")
