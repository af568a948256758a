"""Links shown with a rendered decision (markdown): a leaf module, so every renderer may import it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecisionLinks:
    """Optional URLs shown with a decision: the CI run that made it, the decision in a UI."""

    run: str | None = None
    decision: str | None = None
