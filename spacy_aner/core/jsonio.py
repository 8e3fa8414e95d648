"""JSON text to values, every way it can fail a ``ValueError``."""
from __future__ import annotations

import json
from typing import Any


def loads_json(text: str | bytes, **options: Any) -> Any:
    """``json.loads``; JSON nested too deeply for Python's parser is a ``ValueError`` too, as
    malformed JSON (``JSONDecodeError``) and an integer of more digits than Python converts
    already are, so a caller handles one exception type."""
    try:
        return json.loads(text, **options)
    except RecursionError:
        raise ValueError("nested too deeply") from None
