"""The wheel as a user gets it: installed with pip from the wheelhouse alone (no index, no other package
source) into a fresh venv outside the checkout, run from an empty folder with no policies/ anywhere near.

Issue 12's "done when": ``gate evaluate`` decides with the library installed with gate; ``--policy oci://…``
pulls a bundle pushed with ``gate policy push`` and decides; an organization's bundle layered on the
library adds a deny. Every command is the installed ``gate`` script in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gate.version import __version__
from tests.conftest import DATA, DIGEST
from tests.dist.conftest import clean_env, run_step
from tests.policy.test_layers import org_bundle
from tests.promote.servers import Registry, new_repo

pytestmark = pytest.mark.server

REVISION = f"gate-policies-{__version__}"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


class Installed:
    """The fresh venv gate was installed into, and an empty working folder outside the checkout."""

    def __init__(self, venv: Path, workdir: Path) -> None:
        self.venv, self.workdir = venv, workdir

    def run(self, *args: str | Path, step: str | None = None) -> subprocess.CompletedProcess[str]:
        """The installed ``gate`` with ``args``, in the empty folder; the test's own decision log, keys and
        caches (the autouse fixtures' environment), nothing of the checkout on any path."""
        env = clean_env(PATH=f"{self.venv / 'bin'}:{clean_env()['PATH']}")
        return run_step(step or f"gate {args[0]}", [self.venv / "bin" / "gate", *args], env=env,
                        cwd=self.workdir, check=False, timeout=300)

    def evaluate(self, reports: tuple[str, ...], *extra: str | Path) -> subprocess.CompletedProcess[str]:
        argv: list[str | Path] = ["evaluate", "--env", "prod", "--image", REF]
        for name in reports:
            argv += ["--report", f"auto={DATA / name}"]
        return self.run(*argv, *extra)


@pytest.fixture(scope="module")
def installed(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``python -m venv`` + ``pip install --no-index --find-links WHEELHOUSE promotion-gate``; pip reads no
    configuration file (PIP_CONFIG_FILE=/dev/null), so the wheelhouse is the only place it can look.
    The venv gets no pip of its own (``--without-pip``; this pip installs into it with ``--python``) and
    no bytecode up front: both only cost time here, and neither changes what is installed."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    workdir = tmp_path_factory.mktemp("elsewhere")
    run_step("python -m venv", ["python3.11", "-m", "venv", "--without-pip", venv], env=clean_env())
    run_step("pip install promotion-gate (no index)",
             [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-compile",
              "--disable-pip-version-check", "--quiet", "--no-index", "--find-links", wheelhouse, "promotion-gate"],
             env=clean_env(PIP_CONFIG_FILE="/dev/null"), cwd=workdir)
    return Installed(venv, workdir)


def decision(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def test_gate_runs_from_the_fresh_venv_with_the_library_inside_the_package(installed: Installed) -> None:
    version = installed.run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"gate {__version__}"), version.stderr
    where = run_step("import gate", [installed.venv / "bin" / "python", "-c",
                                     "import gate, importlib.resources as r; print(gate.__file__); "
                                     "print(r.files('gate') / 'library' / '.manifest'); "
                                     "print(r.files('gate') / 'ui' / 'static' / 'gate.css')"],
                     env=clean_env(), cwd=installed.workdir)
    module, manifest, stylesheet = map(Path, where.stdout.split())
    assert module.is_relative_to(installed.venv) and manifest.is_relative_to(installed.venv)
    assert stylesheet.is_file() and stylesheet.is_relative_to(installed.venv)  # gate serve --ui's one stylesheet
    assert json.loads(manifest.read_text())["revision"] == REVISION
    assert not list(installed.workdir.iterdir())  # nothing to find here: no policies/, no gate.toml


def test_evaluate_decides_with_the_shipped_library_and_names_its_revision(installed: Installed) -> None:
    denied = installed.evaluate(ONE_CRITICAL)
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert denied.stdout.splitlines()[0] == f"DENY {REF} (prod)"
    assert "CVE-2022-22965" in denied.stdout and "vulnerabilities.severity" in denied.stdout
    assert f"revision {REVISION} (gate:library)" in denied.stdout
    allowed = installed.evaluate(CLEAN, "--format", "json")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    policy = decision(allowed)["policy"]
    assert (policy["bundle"], policy["revision"]) == ("gate:library", REVISION)


def test_a_bundle_pushed_to_a_registry_is_pulled_and_decides(
    installed: Installed, registry: Registry
) -> None:
    # the library's folder as the installed package has it
    shipped = Path(run_step("library path", [installed.venv / "bin" / "python", "-c",
                                             "import importlib.resources as r; print(r.files('gate') / 'library')"],
                            env=clean_env()).stdout.strip())
    ref = f"oci://{registry.host}/{new_repo('policies')}:{__version__}"
    pushed = installed.run("policy", "push", shipped, ref, step="gate policy push")
    assert pushed.returncode == 0, pushed.stderr
    pinned = pushed.stdout.strip()
    assert pinned.startswith(f"oci://{registry.host}/") and "@sha256:" in pinned

    from_registry = installed.evaluate(CLEAN, "--policy", ref, "--format", "json")
    assert from_registry.returncode == 0, from_registry.stdout + from_registry.stderr
    policy = decision(from_registry)["policy"]
    shipped_policy = decision(installed.evaluate(CLEAN, "--format", "json"))["policy"]
    # the same files, so the same bundle digest as the library decided with directly; recorded pinned
    assert (policy["digest"], policy["revision"]) == (shipped_policy["digest"], REVISION)
    assert policy["layers"] == [{"source": pinned, "digest": shipped_policy["digest"], "revision": REVISION}]
    denied = installed.evaluate(ONE_CRITICAL, "--policy", pinned)
    assert denied.returncode == 1 and "CVE-2022-22965" in denied.stdout, denied.stdout + denied.stderr


def test_an_org_bundle_layered_on_the_library_adds_its_deny(
    installed: Installed, tmp_path: Path
) -> None:
    org = org_bundle(tmp_path)
    assert installed.evaluate(CLEAN).returncode == 0  # the library alone allows these reports
    layered = installed.evaluate(CLEAN, "--policy", "gate:library", "--policy", org)
    assert layered.returncode == 1, layered.stdout + layered.stderr
    assert layered.stdout.splitlines()[0] == f"DENY {REF} (prod)"
    assert "org.images.registry" in layered.stdout and "shop images come from the release registry" in layered.stdout
    assert REVISION in layered.stdout and "org-7" in layered.stdout
