"""``flask --app app orchestration …``: operator actions that need the database, not a token."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.domain.errors import DomainError
from app.services import tokens

cli = AppGroup("orchestration", help="Operator commands for the orchestration service.")


def _runtime():  # type: ignore[no-untyped-def]
    return current_app.extensions["orchestration"]


@cli.command("create-token")
@click.option("--actor", required=True, help="Who acts with this token, e.g. user:alice or agent:planner.")
@click.option("--role", required=True, type=click.Choice(tokens.ROLES))
def create_token(actor: str, role: str) -> None:
    """Create an API token and print it alone on stdout (it is stored hashed only)."""
    rt = _runtime()
    try:
        token = tokens.create_token(actor, role, rt.uow(), rt.clock)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(token)
