"""The errors gate shows to people.

Every error that can reach the command line is a ``GateError``: ``diagnostics()`` returns one line
that names the file or component and says what is wrong. The CLI catches ``GateError`` once, prints
that line and exits 2, so a failure never looks like an allow and never prints a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


def closest_spelling(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` most likely meant, for a "did you mean" on an error line; None when none is close.

    The same letters in another case first, then the closest spelling (difflib, ratio 0.6 or more).
    A hint only: nothing is ever accepted because it is close to a valid name.
    """
    import difflib

    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = word.casefold()
    if folded in by_folded:
        return by_folded[folded]
    matches = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=0.6)
    return by_folded[matches[0]] if matches else None


class GateError(Exception):
    """Base of every error gate reports to a user. Subclass me for more context."""

    def diagnostics(self) -> str:
        """One line for a person: what failed and, where known, what to do; never a credential
        (a URL's password, a token), even when the message quotes another tool's output."""
        from gate.redact import redact

        return redact(str(self))


class UsageError(GateError):
    """The command line or configuration asks for something that cannot be done."""


class PluginError(GateError):
    """A scanner plugin could not be loaded or registered."""


class ReportError(GateError):
    """A report cannot be read: missing, empty, too large, malformed, hostile or of the wrong format."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class ScannerServiceError(GateError):
    """A scanner's server (e.g. SonarQube's Web API) failed or answered something unusable."""


class PolicyError(GateError):
    """A policy bundle cannot be loaded or compiled, or the engine failed: no decision is possible."""


class PromotionError(GateError):
    """A promotion cannot be carried out: the registry, the daemon or the GitOps repository failed."""


class RegistryError(PromotionError):
    """An OCI registry or Docker daemon refused or failed an operation (never prints credentials)."""


class GitOpsError(PromotionError):
    """The GitOps repository cannot be cloned, edited, committed or pushed."""


class ReconcileError(GateError):
    """A reconcile cycle cannot run: the repository cannot be fetched or rendered, or the cluster failed."""
