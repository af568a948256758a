"""The scanners that plugins register, by name, and where each came from (``gate plugins list``)."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from gate.errors import PluginError, UsageError
from gate.scanning.interface import Scanner


@dataclass(frozen=True)
class ScannerInfo:
    """A registered scanner and where it came from."""

    scanner: Scanner
    plugin: str
    version: str
    origin: str


class ScannerRegistry:
    """The scanners registered by the plugins of one plugin manager, by name."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._infos: dict[str, ScannerInfo] = {}
        distinfo = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
        # Call each implementation separately so every scanner is attributed to its plugin.
        for impl in pm.hook.gate_register_scanners.get_hookimpls():
            dist = distinfo.get(id(impl.plugin))
            version = dist.version if dist is not None else "unknown"
            origin = f"{dist.project_name} {dist.version}" if dist is not None else "registered in-process"

            def register(scanner: Scanner, _plugin: str = impl.plugin_name) -> None:
                self._add(scanner, _plugin, version, origin)

            impl.function(register=register)

    def _add(self, scanner: Scanner, plugin: str, version: str, origin: str) -> None:
        if not isinstance(scanner, Scanner):
            raise PluginError(f"plugin {plugin!r} registered {scanner!r}, which is not a gate Scanner")
        if scanner.name in self._infos:
            other = self._infos[scanner.name].plugin
            raise PluginError(f"plugins {other!r} and {plugin!r} both register a scanner named {scanner.name!r}")
        self._infos[scanner.name] = ScannerInfo(scanner, plugin, version, origin)

    def infos(self) -> list[ScannerInfo]:
        """Every registered scanner, sorted by name."""
        return [self._infos[name] for name in sorted(self._infos)]

    def get(self, name: str) -> ScannerInfo:
        """The scanner called ``name``, or a ``UsageError`` listing the ones there are."""
        try:
            return self._infos[name]
        except KeyError:
            known = ", ".join(sorted(self._infos)) or "none"
            raise UsageError(f"no scanner named {name!r} (installed: {known}; or use auto)") from None
