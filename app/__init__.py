"""Flask application factory."""

from __future__ import annotations

from flask import Flask

from app import logs
from app.config import Settings
from app.runtime import Runtime


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app; ``settings`` defaults to the environment (12-factor)."""
    settings = settings or Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    flask_app = Flask(__name__)
    runtime = Runtime.build(settings)
    if settings.dispatch_after_commit:
        from app.relay import Relay

        relay = Relay(settings)
        runtime.dispatcher, runtime.deliverer = relay, relay.deliver
    flask_app.extensions["orchestration"] = runtime
    flask_app.config.update(MAX_CONTENT_LENGTH=settings.max_content_length)

    from app.api import init_api
    from app.cli import cli

    init_api(flask_app)
    flask_app.cli.add_command(cli)
    return flask_app
