"""The number rule and the size limits of free JSON (``metadata``, event and context
``data``, rule parameters): what is accepted is stored, hashed and answered alike.

Numbers are I-JSON (RFC 7493): IEEE doubles, and a number whose value is whole
must lie within ±(2^53−1), whatever its notation (``1e20``, ``100000000000000000000``
and ``1.0e20`` are all refused). Every double at or beyond 2^53 is whole, so this
bounds every number. Accepted numbers are normalised to what RFC 8785 renders:
a whole value becomes an integer (``1.0`` → ``1``, ``-0.0`` → ``0``, ``2e3`` →
``2000``); any other keeps its shortest round-trip form (``1e-7``, ``0.1``). The
database stores that value exactly, so the write's answer is every later read's.
"""

from __future__ import annotations

import json
import math
from typing import Any

SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32  # objects and arrays nested in one body, the outermost counting 1
FIELD_LIMIT = 64 * 1024  # bytes of one free-JSON field, as compact UTF-8 JSON
OUT_OF_RANGE = f"a whole number beyond ±(2^53−1) = ±{SAFE_INTEGER} (I-JSON, RFC 7493)"
NOT_FINITE = "NaN, Infinity and numbers beyond the double range (such as 1e309) are not JSON numbers"


class TooLongInteger(int):
    """What the body parser puts in place of an integer literal too long to be in range.

    Python refuses to convert more than 4,300 digits (a denial-of-service guard),
    so such a literal is never converted: the guard reports it by its place.
    """


def parse_int(text: str) -> int:
    """``json.loads(parse_int=...)``: no literal longer than 2^53's 16 digits is converted."""
    if len(text.lstrip("-")) > 16:
        return TooLongInteger(0)
    return int(text)


def number_problem(value: Any) -> str | None:
    """Why a parsed number cannot be accepted, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, TooLongInteger):
        return OUT_OF_RANGE
    if isinstance(value, float) and not math.isfinite(value):
        return NOT_FINITE
    return OUT_OF_RANGE if abs(value) > SAFE_INTEGER else None


def depth(value: Any) -> int:
    """How deeply objects and arrays nest (a scalar is 0); iterative, so any depth is safe."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def normalise(value: Any) -> Any:
    """The value with every number as RFC 8785 renders it; raises ValueError on a number
    the rule refuses (the API's guard has reported those already)."""
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    problem = number_problem(value)
    if problem is not None:
        raise ValueError(problem)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def serialized_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON rendering: what limits and page budgets count."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
