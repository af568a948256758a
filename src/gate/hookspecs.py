"""The hooks a gate plugin can implement.

A plugin is a module or object with functions marked ``@gate.hookimpl`` and is found through the
``gate.scanners`` entry-point group, exactly like the built-in plugins::

    [project.entry-points."gate.scanners"]
    grype = "gate_grype"

Each hook has the ``gate_`` prefix and receives only the arguments declared here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gate.scanning.interface import Scanner

PROJECT = "gate"
ENTRY_POINT_GROUP = "gate.scanners"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gate_register_scanners(register: Callable[[Scanner], None]) -> None:
    """Register the scanners this plugin provides.

    Call ``register(scanner)`` once per ``Scanner`` instance. Scanner names must be unique across
    all plugins; a clash is an error rather than one plugin silently replacing another.
    """
