"""Renderers: one output format per module. The core never formats text itself."""

from __future__ import annotations
