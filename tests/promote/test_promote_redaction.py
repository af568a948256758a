"""No credential reaches stdout, stderr or the decision log (issue 10, redaction; item 8).

Real components: the CNCF registry, a git HTTP endpoint that refuses credentials (401, as a Git
host does for a wrong token), the CLI in-process; the events are read back from the test's log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest

from gate.decisions.events import EventQuery
from gate.decisions.store import open_store
from tests.conftest import Run
from tests.promote.servers import Registry, new_repo, push_image
from tests.promote.test_gitops import _Refuse401
from tests.promote.test_promote_cli import App, evaluate

SECRET = "s3cr%40t-pw"  # percent-encoded in the URL: git and libpq may print it decoded
FORMS = ("s3cr%40t-pw", "s3cr@t-pw", "s3cr")


@pytest.fixture
def refusing_git() -> Iterator[str]:
    """``http://127.0.0.1:PORT``: a Git host that refuses every credential."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse401)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _allow(gate: Callable[..., Run], data: Path, image: str) -> str:
    decision = evaluate(gate, data, image)
    assert decision["outcome"] == "allow", decision
    return str(decision["decision_id"])


def _stored_events() -> str:
    store = open_store()
    try:
        return msgspec.json.encode(list(store.events(EventQuery()))).decode()
    finally:
        store.close()


def _assert_never_shown(run: Run, *secrets: str) -> None:
    stored = _stored_events()
    for secret in secrets:
        assert secret not in run.out, run.out
        assert secret not in run.err, run.err
        assert secret not in stored, stored


def test_a_gitops_url_password_is_never_printed_or_stored(
    gate: Callable[..., Run], data: Path, registry: Registry, refusing_git: str
) -> None:
    staging, release = new_repo("staging"), new_repo("release")
    image = push_image(registry, staging, "1.0", content=f"redaction {staging}\n".encode())
    decision_id = _allow(gate, data, f"{registry.host}/{staging}:1.0@{image.digest}")
    repo = f"{refusing_git.replace('http://', f'http://ci:{SECRET}@')}/gitops.git"
    for fmt in ("text", "json"):
        run = gate("-v", "promote", "--decision", decision_id, "--target", f"{registry.host}/{release}:1.0",
                   "--gitops-repo", repo, "--gitops-path", "apps/cart/kustomization.yaml", "--format", fmt)
        assert run.code == 2, run.err
        assert f"{refusing_git}/gitops.git" in run.err + run.out  # the location is still named
        _assert_never_shown(run, *FORMS, "ci:")


def test_a_registry_reference_password_is_never_printed_or_stored(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    app = App(registry, tmp_path)
    decision_id = _allow(gate, data, app.source)
    for target in (f"ci:{SECRET}@{app.release_name}:1.0", f"https://ci:{SECRET}@{app.release_name}:1.0"):
        run = gate("promote", "--decision", decision_id, "--target", target,
                   "--gitops-repo", app.remote.url, "--gitops-path", app.path, "--format", "json")
        assert run.code != 0, run.out
        _assert_never_shown(run, *FORMS)


def test_a_reconcile_repository_password_is_never_printed(gate: Callable[..., Run], refusing_git: str) -> None:
    repo = f"{refusing_git.replace('http://', f'http://ci:{SECRET}@')}/gitops.git"
    run = gate("-v", "reconcile", "--repo", repo, "--path", "apps/prod", "--env", "prod", "--once", "--plan")
    assert run.code == 2
    assert f"{refusing_git}/gitops.git" in run.err, run.err
    _assert_never_shown(run, *FORMS, "ci:")
