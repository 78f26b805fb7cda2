"""Request guards: refuse what the database could not store before any work is done."""

from __future__ import annotations

import math
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from app.domain.errors import Invalid
from app.domain.paging import BIGINT_ID_MAX, INT_ID_MAX


class IntId(IntegerConverter):
    """``<int:…>``: an id larger than its INTEGER column can hold is simply not found."""

    largest = INT_ID_MAX

    def to_python(self, value: str) -> int:
        number = int(super().to_python(value))
        if number > self.largest:
            raise NotFound()
        return number


class BigIntId(IntId):
    """``<bigint:…>`` for event ids (BIGINT)."""

    largest = BIGINT_ID_MAX


def id_schema(converter: IntId) -> dict[str, Any]:
    return {"type": "integer", "format": "int64" if converter.largest > INT_ID_MAX else "int32",
            "minimum": 0, "maximum": converter.largest}


def refuse_oversized_bodies() -> None:
    """Refuse a declared oversize body before authenticating or reading it."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and limit is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def refuse_unstorable_text() -> None:
    """What JSON columns cannot store is refused with 422: NUL characters and lone
    surrogates in text (PostgreSQL refuses them), and NaN/Infinity (not JSON at all,
    though Python's parser accepts them)."""
    errors: dict[str, list[str]] = {}
    for name, value in request.args.items(multi=True):
        _scan(value, _escaped(name), errors)
    if request.is_json and request.content_length:
        _scan(request.get_json(silent=True), "", errors)
    if errors:
        raise Invalid("the request holds values that cannot be stored", errors)


def _scan(value: Any, path: str, errors: dict[str, list[str]]) -> None:
    if isinstance(value, str):
        if not _storable(value):
            errors.setdefault(path or "_body", []).append("contains a NUL character or an unpaired surrogate")
    elif isinstance(value, float):
        if not math.isfinite(value):
            errors.setdefault(path or "_body", []).append("NaN and Infinity are not JSON numbers")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{_escaped(str(key))}" if path else _escaped(str(key))
            if not _storable(str(key)):
                errors.setdefault(where, []).append("key contains a NUL character or an unpaired surrogate")
            _scan(item, where, errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _scan(item, f"{path}[{index}]", errors)


def _escaped(text: str) -> str:
    """A key as it can be stored and shown: the offending characters as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
