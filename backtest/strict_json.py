"""JSON the way every output of this program writes it: strict, with null for missing numbers.

Python's :func:`json.dumps` writes ``NaN`` and ``Infinity`` by default, which are not JSON and
which strict parsers (JavaScript's ``JSON.parse``, ``jq``, most databases) reject.  Every JSON
document this program writes or prints (``run --json``, ``sweep --json``, ``runs.jsonl``,
``metrics.json``, ``results.json``, ``sweep.json``) goes through :func:`dumps`, which turns
non-finite numbers (NumPy scalars included) into ``null`` and then refuses any that remain.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Any


def json_ready(value: Any) -> Any:
    """Return ``value`` with non-finite floats as None and NumPy scalars and arrays as Python.

    Mappings become dicts (non-finite float keys become text), lists, tuples and sets become
    lists; anything else is returned unchanged (:func:`dumps` writes unknown objects as text).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {_key(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_ready(item) for item in value]
    if type(value).__name__ in ("NaTType", "NAType"):  # pandas' missing values
        return None
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.generic):
            return json_ready(value.item())
        if isinstance(value, numpy.ndarray):
            return json_ready(value.tolist())
    return value


def _key(key: Any) -> Any:
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(key, numpy.generic):
        return _key(key.item())
    return key


def dumps(value: Any, **options: Any) -> str:
    """Serialise ``value`` as strict JSON (NaN and infinities as null, other objects as text).

    Keyword options go to :func:`json.dumps` (``indent``, ``separators``, ``sort_keys``).
    """
    options.setdefault("default", _text)
    return json.dumps(json_ready(value), allow_nan=False, **options)


def _text(value: Any) -> Any:
    ready = json_ready(value)
    return str(value) if ready is value else ready
