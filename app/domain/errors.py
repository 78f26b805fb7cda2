"""Domain failures, translated to problem+json by the API layer."""

from __future__ import annotations


class DomainError(Exception):
    """Base for failures a caller can act on."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Invalid(DomainError):
    """A request that is well-formed but breaks a rule of the domain (422)."""

    status = 422
    title = "Validation failed"
