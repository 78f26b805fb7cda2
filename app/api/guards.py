"""Request guards: refuse what the database could not store before any work is done."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from app.domain import jsonvalues
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
    """What the database cannot store, or could not store faithfully, is refused before any
    schema sees the request: NUL characters and lone surrogates in text (PostgreSQL
    refuses them: 404 in a path, 422 elsewhere), NaN/Infinity (not JSON), numbers
    outside I-JSON (``app.domain.jsonvalues``) and bodies nested deeper than
    ``MAX_DEPTH``. Chunked bodies are read and checked like any other; one over the
    size limit is 413."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and not _storable(value):
            raise NotFound(f"{name} holds a NUL character or an unpaired surrogate: no resource has it")
    errors: dict[str, list[str]] = {}
    for name, value in request.args.items(multi=True):
        _scan(value, _escaped(name), errors)
    body = _parsed_body()
    if body is not _NO_BODY:
        _scan(body, "", errors)
    if errors:
        raise Invalid("the request holds values that cannot be stored", errors)


_NO_BODY = object()


def _parsed_body() -> Any:
    """The JSON body as the guard reads it (long integers never converted), or ``_NO_BODY``.

    A body that is not JSON at all is left to the schemas (400).
    """
    if not request.is_json:
        return _NO_BODY
    raw = request.get_data(cache=True)
    if not raw:
        return _NO_BODY
    _refuse_streamed_overflow(len(raw))
    try:
        value = json.loads(raw, parse_int=jsonvalues.parse_int, parse_constant=float)
    except RecursionError:
        value = _TOO_DEEP
    except ValueError:  # includes UnicodeDecodeError
        return _NO_BODY
    if value is _TOO_DEEP or jsonvalues.depth(value) > jsonvalues.MAX_DEPTH:
        raise Invalid(f"the body nests objects and arrays deeper than {jsonvalues.MAX_DEPTH} levels",
                      {"_body": [f"nested deeper than {jsonvalues.MAX_DEPTH} levels"]})
    return value


_TOO_DEEP = object()


def _refuse_streamed_overflow(read: int) -> None:
    """A chunked body (no Content-Length) is read up to the limit and silently cut there by
    werkzeug; one more byte waiting on the wire means it was larger: 413, like a declared one."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and read >= limit and request.input_stream.read(1):
        raise RequestEntityTooLarge()


def _scan(value: Any, path: str, errors: dict[str, list[str]]) -> None:
    if isinstance(value, str):
        if not _storable(value):
            errors.setdefault(path or "_body", []).append("contains a NUL character or an unpaired surrogate")
    elif (problem := jsonvalues.number_problem(value)) is not None:
        errors.setdefault(path or "_body", []).append(problem)
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
