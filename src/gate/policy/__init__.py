"""Policies: bundles of Rego plus data, and the engines that evaluate them."""

from __future__ import annotations
