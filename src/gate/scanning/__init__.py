"""Turning reports into the normalized input document that policies read."""

from __future__ import annotations

from gate.scanning.interface import Scanner
from gate.scanning.report import Report

__all__ = ["Report", "Scanner"]
