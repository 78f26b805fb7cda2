"""The web console (``/console``) and the assets that keep ``/docs`` working offline.

Both are static files served by the service itself: the console's from
``app/console/``, Swagger UI's from the ``swagger-ui-bundle`` package, so no
page needs a CDN and the machine may be offline.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint as FlaskBlueprint
from flask import Response, send_from_directory
from flask_smorest import Blueprint
from swagger_ui_bundle import swagger_ui_path

from app.api.errors import problem

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
SWAGGER_UI_URL = "/docs/assets/"

blp = Blueprint("console", __name__, description="The web console (HTML; it signs in with a token).")
assets = FlaskBlueprint("console_assets", __name__)


@blp.route("/console", methods=["GET"])
@blp.doc(security=[], responses={"200": {"description": "The console page", "content": {"text/html": {}}}})
def console() -> Response:
    """The console: live feed, timeline, entity and session pages, rule runs. No token in the URL, ever."""
    response = send_from_directory(CONSOLE_DIR, "index.html", max_age=0)
    response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; style-src 'self'"
    return response


def _failed_precondition_as_problem(response: Response) -> Response:
    """werkzeug answers a failed ``If-Match`` on a static file with 412 and the file as body: say it as problem+json."""
    if response.status_code == 412:
        return problem(412, "Precondition Failed", "If-Match does not match this file's ETag.")
    return response


blp.after_request(_failed_precondition_as_problem)
assets.after_request(_failed_precondition_as_problem)


@assets.route("/console/assets/<path:filename>")
def console_asset(filename: str) -> Response:
    return send_from_directory(CONSOLE_DIR, filename, max_age=300)


@assets.route(f"{SWAGGER_UI_URL}<path:filename>")
def swagger_asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_path, filename, max_age=3600)
