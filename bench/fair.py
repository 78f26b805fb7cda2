"""The fair benchmark (``make bench``): the service through its real processes against baselines, same run.

Sections, each with rounds interleaved (service, baseline, service, …) and
the median of the per-round ratios reported:

1. HTTP ``PATCH /tasks/{code}`` ``{"progress": n}`` through gunicorn with the
   project's settings, worker ``-c 2`` and beat running, at 1, 8 and 32
   connections, against (a) a bare Flask app doing one Core INSERT of an
   event-shaped row (``bench._bare_app``) under the same gunicorn settings and
   (b) pgbench with the same INSERT; plus CPU per write (web + worker +
   database backends) against the bare app's.
2. Rule latency (trigger ``emitted_at`` → effect ``emitted_at``, rule
   ``alert_p0_task``) at 20 and 100 triggers/s, against an empty Celery task's
   round trip on the same broker at the same rate; every effect must be present.
   ``WARMUP`` triggers and empty tasks go first, unmeasured. Then what the worker
   sustains: ``DRAIN_COUNT`` triggers sent at ``DRAIN_RATE``/s, faster than it
   follows, and its effects per second from the first effect to the last.
3. In-process append throughput (``tracking.update``, one event per call)
   against the ``eventsourcing`` library's PostgreSQL recorder, 8 threads each.

The machine is shared, so absolute figures are noisy: the ratios are the result.
Environment: BENCH_SECONDS (per round, default 5), BENCH_ROUNDS (default 2), BENCH_OUT (JSON path),
BENCH_SECTIONS (comma-separated subset of ``http,latency,append``; default all three).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import _baselines as base
from bench import _load as load
from bench import _procs as procs
from bench._bare_app import TABLE_SQL
from bench._fair_setup import Stack, rule_drain, rule_latency, seed

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONNECTIONS = (1, 8, 32)
RATES = (20, 100)
# Triggers (and empty tasks) sent once before the latency rounds and not measured: the first effect a worker
# process applies pays for its lazy imports, rule cache and connections, which steady operation never does again.
WARMUP = 20
DRAIN_RATE, DRAIN_COUNT = 400, 1000
APPEND_THREADS = 8
SECTIONS = frozenset(os.environ.get("BENCH_SECTIONS", "http,latency,append").replace(" ", "").split(","))
_counter = itertools.count(1)


def _patch(tasks: int) -> load.Request:
    def request(_: int) -> tuple[str, str, dict[str, Any]]:
        n = next(_counter)
        return "PATCH", f"/api/orchestration/tasks/B-{n % tasks}", {"progress": (n // tasks) % 100 + 1}
    return request


def http_round(stack: Stack, connections: int) -> dict[str, float]:
    meter = procs.CpuMeter([stack.web, stack.worker], stack.database_url)
    meter.start()
    service = load.closed_loop(stack.web_port, stack.headers, connections, SECONDS, _patch(stack.tasks))
    service_cpu = meter.stop()
    stack.settle(10)
    meter = procs.CpuMeter([stack.bare], stack.database_url)
    meter.start()
    bare = load.closed_loop(stack.bare_port, {}, connections, SECONDS, _patch(stack.tasks))
    bare_cpu = meter.stop()
    tps = base.pgbench(stack.database_url, connections, SECONDS)
    return {"service_rps": service["rps"], "service_errors": service["errors"], "bare_rps": bare["rps"],
            "pgbench_tps": tps, "vs_bare": service["rps"] / bare["rps"],
            "vs_pgbench": service["rps"] / tps if tps else None,
            "service_cpu_ms": 1000 * service_cpu / max(service["ok"], 1),
            "bare_cpu_ms": 1000 * bare_cpu / max(bare["ok"], 1)}


def latency_round(stack: Stack, rate: int) -> dict[str, Any]:
    count = int(rate * SECONDS)
    rules = rule_latency(stack, rate, count)
    noop = base.noop_latency(stack.broker_url, rate, count)
    return {"rule": rules, "noop": noop}


def append_round(stack: Stack, recorder: base.Recorder) -> dict[str, float]:
    ours = base.threaded_rate(stack.append_step, APPEND_THREADS, SECONDS)
    theirs = recorder.append_rate(APPEND_THREADS, SECONDS)
    return {"service": ours, "eventsourcing": theirs, "ratio": ours / theirs}


def median(rounds: list[dict[str, Any]], key: str) -> float | None:
    """Median over the rounds that have the figure (pgbench may not have run)."""
    values = [r[key] for r in rounds if r[key] is not None]
    return round(statistics.median(values), 3) if values else None


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians per section; a section left out (BENCH_SECTIONS) is left out here too."""
    summary: dict[str, Any] = {}
    if result["http"][str(CONNECTIONS[0])]:
        http = {c: {k: median(result["http"][str(c)], k) for k in result["http"][str(c)][0]} for c in CONNECTIONS}
        scaling = http[32]["service_rps"] / http[8]["service_rps"]  # type: ignore[operator]
        summary |= {"http": http, "scaling_8_to_32": round(scaling, 3),
                    "cpu_vs_bare_8": round(http[8]["service_cpu_ms"] / http[8]["bare_cpu_ms"], 2)}  # type: ignore[operator]
    latency = {}
    for rate in RATES:
        rounds = result["latency"][str(rate)]
        if not rounds:
            continue
        latency[rate] = {"rule_p50": statistics.median(r["rule"]["p50"] for r in rounds),
                         "rule_p99": statistics.median(r["rule"]["p99"] for r in rounds),
                         "noop_p50": statistics.median(r["noop"]["p50"] for r in rounds),
                         "noop_p99": statistics.median(r["noop"]["p99"] for r in rounds),
                         "effects_missing": sum(r["rule"]["missing"] for r in rounds)}
    if latency:
        summary["latency"] = latency
    if result["drain"]:
        summary["drain"] = {"effects_per_s": median(result["drain"], "effects_per_s"),
                            "effects_missing": sum(r["missing"] for r in result["drain"])}
    if result["append"]:
        summary["append_vs_eventsourcing"] = median(result["append"], "ratio")
    return summary


def print_table(summary: dict[str, Any]) -> None:
    if "http" in summary:
        _print_http(summary)
    for rate, lat in summary.get("latency", {}).items():
        print(f"rules at {rate}/s: p50 {lat['rule_p50']:.1f} ms p99 {lat['rule_p99']:.1f} ms"
              f" (empty task p50 {lat['noop_p50']:.1f} p99 {lat['noop_p99']:.1f}); effects missing: "
              f"{lat['effects_missing']}")
    if "drain" in summary:
        print(f"worker (-c 2) drains {summary['drain']['effects_per_s']} rule effects/s"
              f" ({DRAIN_COUNT} triggers sent at {DRAIN_RATE}/s); effects missing: {summary['drain']['effects_missing']}")
    if "append_vs_eventsourcing" in summary:
        print(f"in-process append vs eventsourcing ({APPEND_THREADS} threads): x{summary['append_vs_eventsourcing']}")


def _print_http(summary: dict[str, Any]) -> None:
    print(f"{'connections':>11} {'service/s':>10} {'bare/s':>8} {'pgbench':>8} {'vs bare':>8} {'vs pgb':>7}"
          f" {'cpu ms':>7} {'bare ms':>8}")
    for c, h in summary["http"].items():
        pgb, vs_pgb = h["pgbench_tps"], h["vs_pgbench"]
        print(f"{c:>11} {h['service_rps']:>10.0f} {h['bare_rps']:>8.0f} {pgb or float('nan'):>8.0f}"
              f" {h['vs_bare']:>8.2f} {vs_pgb or float('nan'):>7.3f} {h['service_cpu_ms']:>7.2f}"
              f" {h['bare_cpu_ms']:>8.2f}")
    print(f"scaling 8->32: x{summary['scaling_8_to_32']}   CPU per write vs bare (8 conns): x{summary['cpu_vs_bare_8']}")


def run(stack: Stack) -> dict[str, Any]:
    result: dict[str, Any] = {"http": {str(c): [] for c in CONNECTIONS}, "latency": {str(r): [] for r in RATES},
                              "drain": [], "append": []}
    recorder = base.Recorder(stack.database_url, APPEND_THREADS) if "append" in SECTIONS else None
    try:
        if "latency" in SECTIONS:
            rule_latency(stack, RATES[0], WARMUP)
            base.noop_latency(stack.broker_url, RATES[0], WARMUP)
        for n in range(ROUNDS):
            if "http" in SECTIONS:
                for c in CONNECTIONS:
                    result["http"][str(c)].append(http_round(stack, c))
                stack.settle(30)
            if "latency" in SECTIONS:
                for rate in RATES:
                    result["latency"][str(rate)].append(latency_round(stack, rate))
                result["drain"].append(rule_drain(stack, DRAIN_RATE, DRAIN_COUNT))
            if recorder is not None:
                result["append"].append(append_round(stack, recorder))
            print(f"round {n + 1}/{ROUNDS} done", flush=True)
    finally:
        if recorder is not None:
            recorder.close()
    return result


def main() -> None:
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-fair-") as tmp, Stack.up(Path(tmp), TABLE_SQL) as stack:
        seed(stack, latency_tasks=WARMUP + ROUNDS * (DRAIN_COUNT + sum(int(r * SECONDS) for r in RATES)))
        stack.start_processes()
        result = run(stack)
    summary = summarize(result)
    out = Path(os.environ.get("BENCH_OUT", procs.ROOT / "var" / "bench" / f"fair-{started:%Y%m%dT%H%M%S}.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started": started.isoformat(), "seconds": SECONDS, "rounds": ROUNDS,
                               "sections": sorted(SECTIONS),
                               "summary": summary, "raw": result}, indent=2, default=str))
    print_table(summary)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
