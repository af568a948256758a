"""JSON output: exactly one document, as policies and scripts read it."""

from __future__ import annotations

from typing import Any

import msgspec


def render(document: Any) -> bytes:
    """The document as JSON with a trailing newline (key order kept as built)."""
    return msgspec.json.encode(document) + b"\n"
