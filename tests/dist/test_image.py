"""The container image: the Containerfile at the top of the checkout, built with podman on the base CI makes
from Debian packages (.ci/image-base: no base image can be pulled here), then run with no network.

docs/container.md describes both builds (this one, and a normal machine's from the public Python base).
Podman runs as root with its own storage under a temp folder and the containers.conf that running needs
on these machines (../shared/REAL-COMPONENTS.md section 2: runc, ulimits within the hard limit, cgroupfs);
``podman system reset -f`` on that storage afterwards, also when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gate.version import __version__
from tests.conftest import DATA, DIGEST, ROOT
from tests.dist.conftest import STEP_SECONDS, run_step
from tests.promote.servers import short_runroot

pytestmark = pytest.mark.server

BASE = "localhost/gate-ci-base:bookworm"
IMAGE = f"localhost/gate:{__version__}"
UID = 65532  # the Containerfile's user; deploy/deployment.yaml runs the pod as the same uid
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
CONTAINERS_CONF = """\
[containers]
# podman asks for nofile=1048576 by default; no process here may raise a hard limit (no CAP_SYS_RESOURCE)
default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]
[engine]
# crun refuses hybrid cgroups v1+v2; runc with cgroupfs runs (there is no systemd)
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@dataclass
class Podman:
    """podman with its own storage under ``root``, and the image built there."""

    root: Path
    runroot: Path = field(default_factory=short_runroot)

    def env(self) -> dict[str, str]:
        # podman reads $DOCKER_CONFIG/config.json when it is set (the tests' empty folder has none): no auth file
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONFIG"}
        return env | {"CONTAINERS_CONF": str(self.root / "containers.conf"),
                      "CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf"),
                      "REGISTRY_AUTH_FILE": str(self.root / "auth.json")}

    def argv(self, *args: str | Path) -> list[str | Path]:
        return ["podman", "--root", self.root / "storage", "--runroot", self.runroot, *args]

    def __call__(self, step: str, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_step(step, self.argv(*args), env=self.env(), check=check)

    def run(self, *args: str, entrypoint: str | None = None, data: bool = False) -> subprocess.CompletedProcess[str]:
        """``podman run`` of the image with no network (nothing may be fetched at run time); tests/data
        mounted read-only at /data when ``data``."""
        options = ["--rm", "--network", "none"]
        if entrypoint:
            options += ["--entrypoint", entrypoint]
        if data:
            options += ["--volume", f"{DATA}:/data:ro"]
        return self(f"podman run {entrypoint or 'gate'}", "run", *options, IMAGE, *args, check=False)


def build_base(out: Path, request: pytest.FixtureRequest) -> Path:
    """.ci/image-base into ``out`` while the session's wheelhouse is built: the two are independent and
    both wait on the network much of the time, so side by side they take little more than the longer one."""
    log = out.with_suffix(".log")
    started = time.monotonic()
    with log.open("wb") as sink:
        proc = subprocess.Popen([ROOT / ".ci" / "image-base", out], stdout=sink, stderr=sink, stdin=subprocess.DEVNULL)
    try:
        wheelhouse: Path = request.getfixturevalue("wheelhouse")
        code = proc.wait(timeout=900)
    finally:
        if proc.poll() is None:  # the wheelhouse failed: stop the base build, by its own pid
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(60)
    STEP_SECONDS["mmdebstrap base (.ci/image-base), beside pip wheel"] = time.monotonic() - started
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert code == 0, f".ci/image-base {out} exited {code}:\n{tail}"
    return wheelhouse


@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """The base from Debian packages (.ci/image-base), imported; then the image built from the Containerfile,
    with the wheelhouse as the build context's only content and no network in the build."""
    work = tmp_path_factory.mktemp("image")
    pod = Podman(work / "podman")
    pod.root.mkdir()
    nofile = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True, check=True).stdout.strip()
    (pod.root / "containers.conf").write_text(CONTAINERS_CONF.format(nofile=nofile))
    (pod.root / "registries.conf").write_text("")  # no short-name lookups anywhere: every name is local
    (pod.root / "auth.json").write_text("{}")
    try:
        wheelhouse = build_base(work / "base.tar", request)
        pod("podman import base", "import", work / "base.tar", BASE)
        (work / "base.tar").unlink()
        context = work / "context"
        context.mkdir()
        for name in ("Containerfile", ".containerignore"):
            shutil.copy(ROOT / name, context / name)
        shutil.copytree(wheelhouse, context / "wheelhouse", copy_function=os.link)
        pod("podman build", "build", "--network", "none", "--layers=false", "--build-arg", f"BASE={BASE}",
            "--build-arg", f"VERSION={__version__}", "--tag", IMAGE, context)
        yield pod
    finally:
        pod("podman system reset", "system", "reset", "--force", check=False)
        shutil.rmtree(pod.runroot, ignore_errors=True)


def test_the_image_runs_gate_of_this_version_as_its_non_root_user(image: Podman) -> None:
    version = image.run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"gate {__version__}"), version.stderr
    who = image.run("-u", entrypoint="id")
    assert (who.returncode, who.stdout.strip()) == (0, str(UID)), who.stderr
    labels = json.loads(image("podman image inspect", "image", "inspect", IMAGE).stdout)[0]["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "gate"
    assert labels["org.opencontainers.image.base.name"] == BASE


def test_git_and_kubectl_run_in_the_image(image: Podman) -> None:
    git = image.run("--version", entrypoint="git")
    assert git.returncode == 0 and git.stdout.startswith("git version "), git.stderr
    kubectl = image.run("version", "--client", entrypoint="kubectl")
    assert kubectl.returncode == 0 and "Client Version: v" in kubectl.stdout, kubectl.stderr
    # where deploy/'s init container copies the policy bundle from: the shipped library
    manifest = image.run("/opt/gate/policies/.manifest", entrypoint="cat")
    assert json.loads(manifest.stdout)["revision"] == f"gate-policies-{__version__}", manifest.stderr
    # the wheelhouse was only mounted for the build
    assert image.run("-e", "/wheelhouse", entrypoint="test").returncode == 1


def test_evaluate_in_the_image_decides_with_the_shipped_library(image: Podman) -> None:
    run = image.run("evaluate", "--env", "prod", "--image", REF,
                    "--report", "auto=/data/trivy/trivy-image-spring4shell-jre11-jar.json",
                    "--report", "auto=/data/coverage/cobertura-java-cobertura-1.9-maven-example.xml", data=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == f"DENY {REF} (prod)"
    assert "CVE-2022-22965" in run.stdout and "vulnerabilities.severity" in run.stdout
    assert f"revision gate-policies-{__version__} (gate:library)" in run.stdout
