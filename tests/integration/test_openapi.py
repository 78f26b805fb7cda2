"""The OpenAPI document describes every endpoint of the contract, from the same schemas that validate."""

from __future__ import annotations

from tests.support import Api

CONTRACT_ENDPOINTS = [
    ("post", "/sprints"), ("get", "/sprints"), ("get", "/sprints/{code}"), ("patch", "/sprints/{code}"),
    ("delete", "/sprints/{code}"), ("post", "/tasks"), ("get", "/tasks"), ("get", "/tasks/{code}"),
    ("patch", "/tasks/{code}"), ("delete", "/tasks/{code}"), ("post", "/sessions"), ("get", "/sessions"),
    ("get", "/sessions/{key}"), ("post", "/sessions/{key}/resume"), ("post", "/sessions/{key}/end"),
    ("post", "/sessions/{key}/context"), ("post", "/events"), ("get", "/events"), ("get", "/events/{event_id}"),
    ("get", "/events/correlation/{correlation_id}"), ("get", "/events/session/{key}"),
    ("get", "/events/entity/{entity_type}/{code}"), ("get", "/events/timeline"), ("get", "/events/stats"),
    ("get", "/events/correlation/{correlation_id}/validate"), ("post", "/events/replay"),
    ("get", "/sprints/{code}/history"), ("get", "/tasks/{code}/history"), ("get", "/rules"), ("post", "/rules"),
    ("get", "/rules/{rule_id}"), ("patch", "/rules/{rule_id}"), ("delete", "/rules/{rule_id}"),
    ("post", "/rules/{rule_id}/dry-run"), ("get", "/rules/runs"), ("post", "/rules/runs/{run_id}/undo"),
    ("get", "/health"), ("get", "/livez"), ("get", "/readyz"), ("get", "/metrics"),
    ("get", "/sessions/{key}/report"), ("post", "/sessions/{key}/revert"),
]


def normalise(path: str) -> str:
    """Parameter names are ours to choose; the shape is the contract's."""
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))


def test_every_contract_endpoint_is_documented(api: Api) -> None:
    spec = api.client.get("/openapi.json").get_json()
    documented = {(method, normalise(path.removeprefix("/api/orchestration")))
                  for path, operations in spec["paths"].items() for method in operations
                  if method in ("get", "post", "patch", "delete")}
    missing = {(m, p) for m, p in CONTRACT_ENDPOINTS if (m, normalise(p)) not in documented}
    assert missing == set()


def test_errors_are_documented_as_problem_json_and_bearer_auth_is_declared(api: Api) -> None:
    spec = api.client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    for response in spec["components"]["responses"].values():
        assert list(response["content"]) == ["application/problem+json"]
    assert {"type", "title", "status", "detail", "errors"} <= set(spec["components"]["schemas"]["Problem"]["properties"])
    create = spec["paths"]["/api/orchestration/tasks"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/TaskCreate")


def test_probes_and_metrics_are_documented_as_open(api: Api) -> None:
    spec = api.client.get("/openapi.json").get_json()
    for path in ("/livez", "/readyz", "/metrics", "/api/orchestration/health"):
        assert spec["paths"][path]["get"]["security"] == []
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
