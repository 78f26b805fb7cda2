"""Hostile input against every operation of our own OpenAPI document.

The walk reads ``/openapi.json`` (so a new endpoint is covered the day it is
added) and sends each class of hostile input to each operation: NUL characters
and lone surrogates in every path parameter, query parameter and body field;
bodies nested 1,000 deep; integers of 5,000 digits, ``1e309``, ``NaN`` and
whole numbers beyond ±(2^53−1); out-of-range list cursors; codes with a
trailing newline; non-integer versions. Every body goes once with a
``Content-Length`` and once chunked (no length, as a server that de-chunks
passes it on). Each answer must be a 4xx problem+json, and nothing may be
written: the row counts (and versions) of every table are the same after the
operation's probes as before, ``validation_failed`` events (which the contract
asks for) aside. Real chunked encoding through gunicorn is in
``tests/e2e/test_hostile_chunked.py``.
"""

from __future__ import annotations

import io
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from app import create_app
from app.domain.paging import encode_cursor
from app.services import tokens
from app.store.tables import Base
from tests.conftest import make_settings
from tests.support import Api, wipe

pytestmark = pytest.mark.postgres

DEEP = "[" * 1000 + "1" + "]" * 1000
HOSTILE_JSON = {  # raw JSON text: some of these cannot even be produced by json.dumps
    "nul": '"a\\u0000b"',
    "lone surrogate": '"a\\ud800b"',
    "NUL in a key": '{"a\\u0000b": 1}',
    "deep nesting": DEEP,
    "5000-digit integer": "9" * 5000,
    "1e309": "1e309",
    "NaN": "NaN",
    "-Infinity": "-Infinity",
    "whole number beyond 2^53": "1e20",
    "integer beyond 2^53": str(2**53 + 1),
}
NUL, SURROGATE = "%00", "%ED%A0%80"


@dataclass
class Operation:
    method: str
    path: str
    params: list[dict[str, Any]]
    body: dict[str, Any] | None
    anonymous: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Probe:
    label: str
    path: str
    query: str = ""
    body: bytes | None = None
    chunked: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    must_refuse: bool = True  # False: the value lands nowhere the operation reads; only no 5xx
    any_answer: bool = False  # True: any 2xx is fine (reads that may ignore the header); never 5xx, 4xx as problem+json


@dataclass
class Target:
    app: Flask
    api: Api
    values: dict[str, str]
    spec: dict[str, Any]


@pytest.fixture
def target(pg_url: str, tmp_path: Path) -> Iterator[Target]:
    app = create_app(make_settings(pg_url, tmp_path, stream_max_seconds=0.0))  # streams answer, then end
    runtime = app.extensions["orchestration"]
    wipe(runtime.engine)
    issued = {role: tokens.create_token(f"user:{role}", role, runtime.uow(), runtime.clock) for role in tokens.ROLES}
    api = Api(app.test_client(), issued)
    api.create_sprint("S-1")
    task = api.create_task("T-1", "S-1")
    assert api.post("/sessions", json={"agent_id": "agent:a", "session_key": "k1"}).status_code == 201
    rule = api.post("/rules", json={"name": "hostile_rule", "trigger": {"type": "custom.*"},
                                    "action": {"name": "emit_event", "params": {"type": "custom.seen"}}})
    assert rule.status_code == 201
    spare = api.post("/tokens", json={"actor": "agent:spare", "role": "reader"})  # DELETE /tokens/{id} aims here
    assert spare.status_code == 201
    values = {"token_id": str(spare.get_json()["id"]), "code": "T-1", "key": "k1",
              "correlation_id": task["correlation_id"], "entity_type": "task",
              "event_id": str(api.events()[0]["id"]), "rule_id": str(rule.get_json()["id"]), "run_id": "1"}
    spec = app.test_client().get("/openapi.json").get_json()
    yield Target(app, api, values, spec)
    if "orchestration_stream_hub" in app.extensions:
        app.extensions["orchestration_stream_hub"].stop()
    runtime.engine.dispose()


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def operations(target: Target) -> list[Operation]:
    found = []
    for path, item in target.spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            found.append(Operation(method.upper(), path, params, resolve(target.spec, body) if body else None))
    for operation in found:  # an operation that answers without a token reads nothing of the request
        concrete = concrete_path(operation, target.values, {})
        operation.anonymous = target.api.client.open(concrete, method=operation.method).status_code != 401
    return found


def concrete_path(operation: Operation, values: dict[str, str], override: dict[str, str]) -> str:
    path = operation.path
    for param in operation.params:
        if param["in"] == "path":
            name = param["name"]
            value = override.get(name, urllib.parse.quote(path_value(operation, name, values), safe=""))
            path = path.replace("{" + name + "}", value)
    return path


def path_value(operation: Operation, name: str, values: dict[str, str]) -> str:
    if name == "code" and "/sprints/" in operation.path:
        return "S-1"
    return values[name]


def valid_value(spec: dict[str, Any], name: str, schema: dict[str, Any]) -> Any:
    """A value the schema accepts, so a probe that spoils one field proves that field's check."""
    schema = resolve(spec, schema)
    pools = {"sprint_code": "S-NEW", "task_code": "T-NEW", "session_key": "k-new", "name": "rule_new",
             "type": "custom.probe", "agent_id": "agent:a", "title": "t", "correlation_id": "x"}
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string" or name in pools:
        return pools.get(name, "x")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if schema.get("properties"):
        return {k: valid_value(spec, k, v) for k, v in schema["properties"].items() if k in schema.get("required", [])}
    return {}


def body_with(spec: dict[str, Any], schema: dict[str, Any], name: str, raw: str) -> bytes:
    """A body valid but for ``name``, whose value is the raw JSON text ``raw``."""
    base = {k: valid_value(spec, k, v) for k, v in schema.get("properties", {}).items()
            if k in schema.get("required", []) and k != name}
    text_ = json.dumps(base)
    inner = f'"{name}": {raw}'
    return (text_[:-1] + (", " if base else "") + inner + "}").encode()


def path_probes(operation: Operation, values: dict[str, str]) -> Iterator[Probe]:
    for param in operation.params:
        if param["in"] != "path":
            continue
        name, valid = param["name"], urllib.parse.quote(path_value(operation, param["name"], values), safe="")
        spoiled = {"NUL": f"A{NUL}B", "lone surrogate": f"A{SURROGATE}B", "trailing newline": f"{valid}%0A",
                   "5000 digits": "9" * 5000}
        for label, value in spoiled.items():
            # A URL cannot carry a lone surrogate (its bytes decode to U+FFFD), and a key no
            # entity has may be a search that finds nothing: refused, or found nothing.
            yield Probe(f"path {name}: {label}", concrete_path(operation, values, {name: value}),
                        must_refuse=label == "NUL")


def query_probes(operation: Operation, path: str) -> Iterator[Probe]:
    for param in operation.params:
        if param["in"] != "query":
            continue
        name, schema = param["name"], param.get("schema", {})
        yield Probe(f"query {name}: NUL", path, f"{name}=a{NUL}b")
        strict = "enum" in schema or "pattern" in schema or schema.get("type") in ("integer", "boolean")
        yield Probe(f"query {name}: lone surrogate", path, f"{name}=a{SURROGATE}b", must_refuse=strict)
        if "enum" in schema:
            yield Probe(f"query {name}: trailing newline", path, f"{name}={schema['enum'][0]}%0A")
        closed = "enum" in schema or schema.get("type") in ("integer", "boolean") or name in ("from", "to", "at")
        yield Probe(f"query {name}: 5000 digits", path, f"{name}={'9' * 5000}", must_refuse=closed)
        yield Probe(f"query {name}: 5000-digit age", path, f"{name}={'9' * 5000}d", must_refuse=closed)
        if name == "after":
            for beyond in (2**31, 2**63):
                yield Probe(f"query after: cursor of id {beyond}", path, f"after={encode_cursor(beyond)}",
                            must_refuse=beyond == 2**63 or not ("/events" in operation.path
                                                                         or operation.path.endswith("/history")))
    yield Probe("undeclared query parameter: NUL", path, f"hostile=a{NUL}b", must_refuse=not operation.anonymous)


def body_probes(operation: Operation, path: str, spec: dict[str, Any]) -> Iterator[Probe]:
    schema = operation.body or {}
    names = list(schema.get("properties", {})) or ["hostile"]
    refuse = operation.body is not None or not operation.anonymous
    for name in names:
        prop = resolve(spec, schema.get("properties", {}).get(name, {}))
        for label, raw in HOSTILE_JSON.items():
            yield Probe(f"body {name}: {label}", path, body=body_with(spec, schema, name, raw), must_refuse=refuse)
            if prop.get("type") == "object" or "additionalProperties" in prop:
                yield Probe(f"body {name}.inner: {label}", path, body=body_with(spec, schema, name, '{"k": ' + raw + "}"))
        if "pattern" in prop:
            spoiled = json.dumps(valid_value(spec, name, prop) + "\n")
            yield Probe(f"body {name}: trailing newline", path, body=body_with(spec, schema, name, spoiled))
        if name == "version":
            for wrong in ("1.9", '"1"', "true"):
                yield Probe(f"body version: {wrong}", path, body=body_with(spec, schema, name, wrong))
    for label, raw in HOSTILE_JSON.items():  # every field spoiled at once, sent chunked
        fields_ = ", ".join(f'"{n}": {raw}' for n in names)
        yield Probe(f"chunked body: {label}", path, body=("{" + fields_ + "}").encode(), chunked=True,
                    must_refuse=refuse)
    if "version" in schema.get("properties", {}):  # the operations that read If-Match
        yield Probe("If-Match: 5000 digits", path, headers={"If-Match": "9" * 5000}, body=b"{}")


# Request headers the service reads somewhere (a session, a workflow, a resume point, a version).
HOSTILE_HEADERS = {name: "9" * 5000 for name in ("Last-Event-ID", "X-Correlation-ID", "X-Session-Key", "If-Match")}


def header_probes(operation: Operation, path: str) -> Iterator[Probe]:
    """Oversized headers on every read: whatever reads them must refuse them cleanly (reads write nothing)."""
    if operation.method != "GET":
        return
    for name, value in HOSTILE_HEADERS.items():
        yield Probe(f"header {name}: 5000 digits", path, headers={name: value}, any_answer=True)


def judged_wrong(probe: Probe, response: Any) -> bool:
    if response.status_code >= 500:
        return True
    if probe.any_answer:
        return response.status_code >= 400 and not refused(response)
    return not (refused(response) or (not probe.must_refuse and found_nothing(response)))


def send(api: Api, operation: Operation, probe: Probe) -> Any:
    headers = {"Authorization": f"Bearer {api.tokens['admin']}", **probe.headers}
    kwargs: dict[str, Any] = {}
    if probe.body is not None:
        headers["Content-Type"] = "application/json"
        if probe.chunked:
            headers["Transfer-Encoding"] = "chunked"
            kwargs = {"input_stream": io.BytesIO(probe.body), "environ_overrides": {"wsgi.input_terminated": True}}
        else:
            kwargs = {"data": probe.body}
    return api.client.open(probe.path, method=operation.method, query_string=probe.query, headers=headers, **kwargs)


def fingerprint(app: Flask) -> dict[str, Any]:
    """Row counts of every table, and the versions of stream rows; validation_failed aside."""
    engine = app.extensions["orchestration"].engine
    counted: dict[str, Any] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            stmt = select(func.count()).select_from(table)
            if "type" in table.c:
                stmt = stmt.where(table.c.type.not_like("%.validation_failed"))
            if table.name == "orchestration_outbox":
                stmt = stmt.where(text("event_id NOT IN (SELECT id FROM orchestration_events "
                                       "WHERE type LIKE '%.validation_failed')"))
            counted[table.name] = connection.execute(stmt).scalar()
            if "version" in table.c:
                counted[f"{table.name}.version"] = connection.execute(select(func.sum(table.c.version))).scalar()
            for column in ("revoked_at", "deleted_at", "ended_at", "archived_at"):
                if column in table.c:
                    stmt = select(func.count()).select_from(table).where(table.c[column].is_not(None))
                    counted[f"{table.name}.{column}"] = connection.execute(stmt).scalar()
            if "updated_at" in table.c:
                counted[f"{table.name}.updated_at"] = connection.execute(select(func.max(table.c.updated_at))).scalar()
    return counted


def found_nothing(response: Any) -> bool:
    """A 2xx that read the hostile value as a search (or ignored it) and wrote nothing."""
    if not 200 <= response.status_code < 300:
        return False
    if response.mimetype == "text/plain":  # /metrics: Prometheus text, whatever the query or body
        return True
    if response.mimetype == "text/event-stream":  # a stream that matched no event
        return "\nid: " not in "\n" + response.get_data(as_text=True)
    if response.mimetype == "text/html":  # a static page (the console) reads nothing of the request
        return True
    body = response.get_json(silent=True) or {}
    counts = [b["count"] for b in body.get("buckets", [{"count": 1}])]
    return (body.get("items") == [] or body.get("events") == 0 or body.get("total") == 0 or not any(counts)
            or body.get("status") in ("ok", "degraded"))


def refused(response: Any) -> bool:
    if not 400 <= response.status_code < 500 or response.status_code == 429 or response.mimetype != "application/problem+json":
        return False
    return bool(response.get_json()["status"] == response.status_code)


def test_every_operation_refuses_every_class_of_hostile_input_and_writes_nothing(target: Target) -> None:
    walked = operations(target)
    assert len(walked) == sum(len([m for m in item if m != "parameters"]) for item in target.spec["paths"].values())
    assert len(walked) >= 37
    failures: list[str] = []
    sent = 0
    for operation in walked:
        path = concrete_path(operation, target.values, {})
        before = fingerprint(target.app)
        probes = [*path_probes(operation, target.values), *query_probes(operation, path),
                  *body_probes(operation, path, target.spec), *header_probes(operation, path)]
        for probe in probes:
            response = send(target.api, operation, probe)
            sent += 1
            if judged_wrong(probe, response):
                failures.append(f"{operation.name} [{probe.label}] -> {response.status_code} "
                                f"{response.get_data(as_text=True)[:160]}")
        if fingerprint(target.app) != before:
            failures.append(f"{operation.name}: its hostile requests wrote something")
    assert sent > 1000
    assert failures == [], "\n".join(failures)


def test_the_walk_would_notice_a_write_and_a_server_error(target: Target) -> None:
    """The two judges of the walk are not blind: a real write changes the fingerprint,
    and an accepted value is not mistaken for a refusal."""
    before = fingerprint(target.app)
    accepted = target.api.patch("/tasks/T-1", json={"title": "changed"})
    assert accepted.status_code == 200 and not refused(accepted)
    assert fingerprint(target.app) != before
