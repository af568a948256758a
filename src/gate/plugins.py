"""Building the plugin manager (the scanners its plugins register: gate.scanning.registry)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import pluggy

from gate import hookspecs
from gate.errors import PluginError

logger = logging.getLogger(__name__)


def disabled_from_env() -> list[str]:
    """Plugin names listed in GATE_DISABLE_PLUGINS (comma-separated)."""
    return [n.strip() for n in os.environ.get("GATE_DISABLE_PLUGINS", "").split(",") if n.strip()]


def plugin_manager(disabled: Iterable[str] = (), load_entry_points: bool = True) -> pluggy.PluginManager:
    """A manager with gate's hookspecs and every plugin of the ``gate.scanners`` entry-point group.

    ``disabled`` names are blocked before loading, so a broken plugin can be switched off.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    if load_entry_points:
        try:
            pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
        except pluggy.PluginValidationError as e:
            raise PluginError(f"plugin {e.plugin!r} is invalid: {e}") from e
        except Exception as e:  # a third-party plugin failing to import must not be a traceback
            raise PluginError(
                f"a gate.scanners plugin failed to load: {type(e).__name__}: {e} "
                "(disable it with GATE_DISABLE_PLUGINS=NAME)"
            ) from e
    pm.check_pending()
    return pm
