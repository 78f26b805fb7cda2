"""``flask --app app orchestration …``: operator actions that need the database, not a token."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from app import metrics
from app.domain.clock import iso, utc_now
from app.domain.errors import DomainError
from app.domain.event_filter import EventFilter
from app.domain.retention import DEFAULT_BATCH_SIZE
from app.domain.timeparse import parse_age, parse_instant
from app.runtime import Runtime
from app.services import (
    archive,
    archive_purge,
    forensics_text,
    integrity,
    rules_admin,
    session_report,
    session_revert,
    tokens,
)
from app.services.context import ChangeContext

cli = AppGroup("orchestration", help="Operator commands for the orchestration service.")


def _runtime() -> Runtime:
    rt: Runtime = current_app.extensions["orchestration"]
    return rt


def _age(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Reject a malformed age before any work starts."""
    if value is not None:
        try:
            utc_now() - parse_age(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        except OverflowError:
            raise click.BadParameter(f"age too large: {value!r}") from None
    return value


def _ignore(_busy: bool, _rows: int) -> None:
    """Dry runs are not runs: nothing to count."""


def _lifetime(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """``--expires-in 30d``: an age, checked like ``--older-than``, as a duration."""
    checked = _age(ctx, param, value)
    return parse_age(checked) if checked is not None else None


@cli.command("create-token")
@click.option("--actor", required=True, help="Who acts with this token, e.g. user:alice or agent:planner.")
@click.option("--role", required=True, type=click.Choice(tokens.ROLES))
@click.option("--expires-in", callback=_lifetime,
              help="Lifetime like 30d or 12h (default: until revoked).")
@click.option("--name", help="What the token is for, shown by list-tokens.")
@click.option("--writes-per-second", type=click.FloatRange(min=0, min_open=True),
              help="This token's write limit (default: ORCH_RATE_LIMIT_WRITES).")
@click.option("--reads-per-second", type=click.FloatRange(min=0, min_open=True),
              help="This token's read limit (default: ORCH_RATE_LIMIT_READS).")
def create_token(actor: str, role: str, **options: Any) -> None:
    """Create an API token and print it alone on stdout (it is stored hashed only)."""
    rt = _runtime()
    try:
        token, _ = tokens.issue_token(tokens.NewToken(actor, role, **options), tokens.CLI_ACTOR, rt.uow(), rt.clock)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(token)


TOKEN_COLUMNS = ("id", "actor", "role", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")


@cli.command("list-tokens")
def list_tokens() -> None:
    """Every token, tab-separated with a header (never the secret)."""
    rt, after = _runtime(), 0
    click.echo("\t".join(TOKEN_COLUMNS))
    while True:
        items, last = tokens.list_tokens(after, 1000, rt.read_uow())
        for item in items:
            click.echo("\t".join("-" if item[c] is None else str(item[c]) for c in TOKEN_COLUMNS))
        if last is None:
            return
        after = last


@cli.command("revoke-token")
@click.argument("token_id", type=click.IntRange(min=1))
def revoke_token(token_id: int) -> None:
    """Revoke a token by id: it answers 401 on every process within about a second."""
    rt = _runtime()
    try:
        body = tokens.revoke_token(token_id, tokens.CLI_ACTOR, rt.uow(), rt.clock)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"token {body['id']} ({body['actor']}, {body['prefix'] or 'no prefix'}) revoked at {body['revoked_at']}")


def _echo_progress(progress: archive.Progress) -> None:
    rate = f"{progress.rate:.0f} events/s" if progress.rate else "rate not measurable yet"
    click.echo(f"... {progress.events} events, {progress.files} files ({rate})", err=True)


def _cold_storage() -> archive.ColdStorage:
    rt = _runtime()
    try:
        return archive.cold_storage(rt.settings, rt.engine)
    except ValueError as exc:
        raise click.ClickException(f"retention settings: {exc}") from None


@cli.command("archive-events")
@click.option("--older-than", callback=_age, help="Age like 90d, 12h, 2w or 30m (default: ORCH_RETENTION_ARCHIVE_AFTER).")
@click.option("--dry-run", is_flag=True, help="Show per priority what would be archived and what is held.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="Events per archive file.")
def archive_events(older_than: str | None, dry_run: bool, batch_size: int) -> None:
    """Move events older than the age to gzip JSON Lines files under ARCHIVE_DIR; kept priorities stay."""
    rt, cold = _runtime(), _cold_storage()
    job = archive.ArchiveJob(older_than, batch_size, dry_run)
    try:
        with metrics.retention_run("archive") if not dry_run else nullcontext(_ignore) as finished:
            report = archive.archive_events(job, cold, rt.uow(), rt.read_uow(), rt.clock, _echo_progress)
            finished(report.busy, report.events)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    if report.busy:
        click.echo(archive.BUSY_MESSAGE, err=True)
    elif report.plan is not None:
        _echo_plan(report)
    else:
        _echo_archived(report)


def _echo_plan(report: archive.ArchiveReport) -> None:
    click.echo(f"dry run: hot events stamped before {iso(report.cutoff)}; nothing written")
    click.echo(f"{'priority':<9}{'archive':>9}{'held':>9}")
    for row in report.plan or []:
        click.echo(f"{row.priority:<9}{row.archive:>9}{row.held:>9}" + ("  (kept forever)" if row.kept else ""))


def _echo_archived(report: archive.ArchiveReport) -> None:
    for path in report.discarded:
        click.echo(f"discarded unfinished temporary file {path}", err=True)
    for path in report.recovered:
        click.echo(f"completed {path}, left by an interrupted run", err=True)
    for path in report.rejected:
        click.echo(f"set aside {path}.rejected: it does not match the rows it names", err=True)
    click.echo(f"archived {report.events} events stamped before {iso(report.cutoff)} into "
               f"{len(report.files) + len(report.recovered)} files ({report.streams} stream snapshots) "
               f"in {report.seconds:.1f}s")


@cli.command("purge-archived")
@click.option("--older-than", callback=_age, help="Age like 365d or 52w (default: ORCH_RETENTION_DELETE_AFTER).")
@click.option("--dry-run", is_flag=True, help="List the archive files that would be purged.")
def purge_archived(older_than: str | None, dry_run: bool) -> None:
    """Delete archived events past retention: their rows and their files, file by file."""
    rt, cold = _runtime(), _cold_storage()
    try:
        with metrics.retention_run("purge") if not dry_run else nullcontext(_ignore) as finished:
            report = archive_purge.purge_archived(older_than, dry_run, cold, rt.uow(), rt.read_uow(), rt.clock,
                                                  _echo_progress)
            finished(report.busy, report.events)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    if report.busy:
        click.echo(archive.BUSY_MESSAGE, err=True)
        return
    for path in report.held:
        click.echo(f"held {path}: missing, not matching its manifest, or holding a recent event", err=True)
    for path in report.files:
        click.echo(path)
    verb = "would purge" if dry_run else "purged"
    click.echo(f"{verb} {report.events} archived events stamped before {iso(report.cutoff)} "
               f"in {len(report.files)} files")


@cli.command("restore-archive")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_archive(path: Path) -> None:
    """Re-insert the events of an archive file (a copy from a backup), checked against its manifest."""
    rt, cold = _runtime(), _cold_storage()
    try:
        report = archive_purge.restore_archive(path, cold, rt.uow(), rt.clock)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"restored {report.inserted} events from {path} as {report.path} "
               f"({report.present} were still present)")


VERIFY_SHOWN = 20


@cli.command("verify-chain")
@click.option("--correlation", "correlation_id", help="Validate the streams this correlation id touches.")
@click.option("--all", "everything", is_flag=True, help="Validate every stream in the database.")
def verify_chain(correlation_id: str | None, everything: bool) -> None:
    """Check sequences and the hash chain; exit 1 naming the first broken event."""
    if bool(correlation_id) == everything:
        raise click.UsageError("give exactly one of --correlation UUID or --all")
    rt = _runtime()
    try:
        report = (integrity.validate_all(rt.read_uow()) if everything
                  else integrity.validate_event_chain(correlation_id or "", rt.read_uow()))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    problems = report["problems"]
    click.echo(f"{report['events']} events in {report['streams']} streams: "
               f"{f'{len(problems)} problem(s)' if problems else 'valid'}")
    for problem in problems[:VERIFY_SHOWN]:
        click.echo(f"  {integrity.describe(problem)}")
    if len(problems) > VERIFY_SHOWN:
        click.echo(f"  … and {len(problems) - VERIFY_SHOWN} more")
    if problems:
        raise click.ClickException(f"chain broken; first broken event: {integrity.describe(problems[0])}")


CLI_REPORT_LIMIT = 1000


@cli.command("session-report")
@click.argument("key")
def session_report_command(key: str) -> None:
    """What an agent session did, what it was refused, and what it set off (human-readable)."""
    rt = _runtime()
    try:
        report = session_report.report(key, None, CLI_REPORT_LIMIT, rt.read_uow(), rt.clock)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    for line in forensics_text.report_lines(report):
        click.echo(line)


@cli.command("revert-session")
@click.argument("key")
@click.option("--apply", "apply_", is_flag=True, help="Write the compensating changes (default: dry run).")
@click.option("--force", is_flag=True, help="Also revert fields others changed since the session.")
@click.option("--include-automation", is_flag=True, help="Also revert what the session's rules changed.")
@click.option("--trigger-rules", is_flag=True, help="Let rules react to the compensating changes.")
@click.option("--actor", default="system:cli", show_default=True, help="Actor of the compensating events.")
def revert_session_command(key: str, apply_: bool, force: bool, include_automation: bool, trigger_rules: bool,
                           actor: str) -> None:
    """Put every field the session changed back to its value before the session; conflicts are listed."""
    rt = _runtime()
    options = session_revert.RevertOptions(dry_run=not apply_, include_automation=include_automation,
                                           force=force, trigger_rules=trigger_rules)
    try:
        result = session_revert.revert(key, options, ChangeContext(actor=actor),
                                       rt.uow() if apply_ else rt.read_uow(), rt.clock)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    for line in forensics_text.revert_lines(result):
        click.echo(line)


@cli.command("backtest-rule")
@click.option("--rule", "rule_id", required=True, type=click.IntRange(min=1), help="The id of a stored rule.")
@click.option("--from", "start", required=True, help="Window start: ISO 8601, a date, or an age like 30d.")
@click.option("--to", "end", default=None, help="Window end (exclusive); default: now.")
@click.option("--page-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
def backtest_rule(rule_id: int, start: str, end: str | None, page_size: int) -> None:
    """Judge a rule as of each event of the window and print what it would have done; writes nothing."""
    rt = _runtime()
    try:
        flt = EventFilter(start=parse_instant(start, rt.clock()),
                          end=parse_instant(end, rt.clock()) if end else None)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    totals: Counter[str] = Counter()
    after = 0
    while True:
        try:
            page = rules_admin.backtest(rule_id, None, flt, after, page_size, rt.read_uow(),
                                        rt.settings.causation_depth_limit)
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
        _echo_backtest_page(page, totals)
        after = page["next_id"]
        if not after:
            break
    click.echo(f"{totals['scanned']} events scanned, {totals['matches']} matches, "
               f"{totals['would_apply']} would apply; effects: "
               + (", ".join(f"{k} {v}" for k, v in sorted(totals.items()) if k.startswith("effect:")) or "none"))


def _echo_backtest_page(page: dict[str, Any], totals: Counter[str]) -> None:
    summary = page["summary"]
    totals.update(scanned=summary["events_scanned"], matches=summary["matches"], would_apply=summary["would_apply"])
    totals.update({f"effect:{k}": v for k, v in summary["effects_by_type"].items()})
    for item in page["items"]:
        event = item["event"]
        effects = "; ".join(f"{e['effect']} {e['entity']['type']} {e['entity'].get('code') or ''}".rstrip()
                            for e in item["effects"]) or "-"
        click.echo(f"{event['id']}\t{event['timestamp']}\t{event['type']}\t{event['entity']['code'] or ''}"
                   f"\t{item['outcome']}\t{effects}")
    if summary["scanned_through_id"] and summary["window_last_id"]:
        click.echo(f"... scanned through event {summary['scanned_through_id']} of {summary['window_last_id']}",
                   err=True)
