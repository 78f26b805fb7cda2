"""Dumping output schemas whose values are already in their public shape, without marshmallow's per-field work.

An event envelope (``app.store.envelopes``) is a dict of strings, integers,
None and JSON objects: dumping it through ``EventOut`` only picks the declared
keys. Marshmallow still calls a getter and a serializer per field, which made
dumping the largest cost of a long replay (10,000 steps: about 30% of the
request) and a few milliseconds of every page of events.

``PlainDump`` picks the keys itself when every value already has the type the
field would produce, which is exactly when marshmallow's answer is the value
unchanged (a dict or list is copied, as marshmallow copies it). Any other value
(a number in a string field, a bool in an integer field, an object that is not
a dict) sends the whole dump through marshmallow, so the answer never differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing

_FALLBACK = object()
Pick = Callable[[Any], Any]


def _exact(kind: type) -> Pick:
    return lambda value: value if value is None or type(value) is kind else _FALLBACK


def _mapping(value: Any) -> Any:
    return value if value is None else dict(value) if type(value) is dict else _FALLBACK


def _strings(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is list and all(type(item) is str for item in value):
        return list(value)
    return _FALLBACK


def _nested(picks: tuple[tuple[str, Pick], ...]) -> Pick:
    def pick(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is not dict:
            return _FALLBACK
        out = {}
        for name, field_pick in picks:
            if name in value:
                item = field_pick(value[name])
                if item is _FALLBACK:
                    return _FALLBACK
                out[name] = item
        return out
    return pick


def _field_pick(field: fields.Field[Any]) -> Pick | None:
    """How to dump one field by picking, or None when only marshmallow knows."""
    if field.data_key is not None or field.attribute is not None or field.dump_default is not missing:
        return None
    if type(field) is fields.String:
        return _exact(str)
    if type(field) is fields.Integer and not field.as_string:
        return _exact(int)
    if type(field) is fields.Dict and field.key_field is None and field.value_field is None:
        return _mapping
    if type(field) is fields.List and type(field.inner) is fields.String and field.inner.data_key is None:
        return _strings
    if type(field) is fields.Nested and not getattr(field, "many", False):
        nested = field.schema
        if not isinstance(nested, PlainDump) or nested.many or nested.only is not None or nested.exclude:
            return None
        return nested.plain_pick()
    return None


class PlainDump(Schema):
    """An output schema whose ``dump`` picks keys when marshmallow would return the values unchanged."""

    _plain: Pick | None

    def plain_pick(self) -> Pick | None:
        """The picker for this schema's fields (built once per instance), or None when one needs marshmallow."""
        if "_plain" not in self.__dict__:
            picks = [(name, _field_pick(field)) for name, field in self.dump_fields.items()]
            self._plain = None if any(p is None for _, p in picks) else _nested(
                tuple((name, p) for name, p in picks if p is not None))
        return self._plain

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        many = self.many if many is None else bool(many)
        pick = self.plain_pick() if self.only is None and not self.exclude else None
        if pick is not None:
            picked = [pick(item) for item in obj] if many and isinstance(obj, list) else None if many else pick(obj)
            if picked is not None and picked is not _FALLBACK and not (many and any(p is _FALLBACK for p in picked)):
                return picked
        return super().dump(obj, many=many)
