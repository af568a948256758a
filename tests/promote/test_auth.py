"""Registry auth: Docker config credentials (auths, credHelpers, credsStore) against a real htpasswd
registry, and the Bearer flow against a real registry in ``auth: token`` mode backed by the stand-in
token server of servers.py."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from gate.errors import RegistryError
from gate.registry.auth import Credentials, load_credentials, parse_challenge
from gate.promote.registry import copy_image, resolve_digest
from tests.promote.servers import Registry, TokenServer, manifest_digest, new_repo, push_image

pytestmark = pytest.mark.server

HELPER = """#!{python}
# A test credential helper speaking the docker-credential protocol: `get` reads the server URL on stdin.
import json, os, sys
if sys.argv[1:] != ["get"]:
    sys.exit(2)
server = sys.stdin.read().strip()
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "asked.log"), "a") as log:
    log.write(server + "\\n")
if os.environ.get("GATE_TEST_HELPER_FAIL"):
    print("boom: internal failure " + {secret!r}, file=sys.stderr)
    sys.exit(3)
store = {store}
if server not in store:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps({{"ServerURL": server, "Username": store[server][0], "Secret": store[server][1]}}))
"""


def write_config(folder: Path, config: dict[str, object]) -> None:
    (folder / "config.json").write_text(json.dumps(config))


def install_helper(
    folder: Path, name: str, store: dict[str, tuple[str, str]], monkeypatch: pytest.MonkeyPatch, secret: str = ""
) -> Path:
    """Write ``docker-credential-<name>`` into ``folder`` and put it first on PATH."""
    import sys

    path = folder / f"docker-credential-{name}"
    path.write_text(HELPER.format(python=sys.executable, store=repr(store), secret=secret))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return path


@pytest.fixture(scope="module")
def staged(auth_registry: Registry) -> tuple[str, str]:
    """An image in the auth registry: (repository, digest)."""
    repo = new_repo("staging")
    return repo, push_image(auth_registry, repo).digest


def test_without_credentials_the_error_names_the_registry_and_unauthorized(
    auth_registry: Registry, staged: tuple[str, str]
) -> None:
    repo, digest = staged
    with pytest.raises(RegistryError) as err:
        copy_image(f"{auth_registry.host}/{repo}@{digest}", f"{auth_registry.host}/{new_repo()}:1")
    message = err.value.diagnostics()
    assert "UNAUTHORIZED" in message and "401" in message and auth_registry.host in message
    assert auth_registry.password is not None and auth_registry.password not in message


def test_wrong_password_is_refused_without_echoing_it(
    auth_registry: Registry, staged: tuple[str, str], docker_config: Path
) -> None:
    repo, digest = staged
    write_config(docker_config, {"auths": {auth_registry.host: {"username": "gate-user", "password": "wrong-pw-42"}}})
    with pytest.raises(RegistryError) as err:
        copy_image(f"{auth_registry.host}/{repo}@{digest}", f"{auth_registry.host}/{new_repo()}:1")
    assert "UNAUTHORIZED" in str(err.value) and "wrong-pw-42" not in str(err.value)


@pytest.mark.parametrize("form", ["auth", "username", "http-key"])
def test_auths_in_docker_config(
    form: str, auth_registry: Registry, staged: tuple[str, str], docker_config: Path
) -> None:
    repo, digest = staged
    user, password = auth_registry.user, auth_registry.password
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    entry = {"auth": encoded} if form == "auth" else {"username": user, "password": password}
    key = f"http://{auth_registry.host}/v2/" if form == "http-key" else auth_registry.host
    write_config(docker_config, {"auths": {key: entry}})
    target = new_repo("release")

    result = copy_image(f"{auth_registry.host}/{repo}@{digest}", f"{auth_registry.host}/{target}:1")

    assert any(op.startswith("mount ") for op in result.operations)
    assert manifest_digest(auth_registry, target, "1") == digest


def test_cred_helper_per_registry(
    auth_registry: Registry, staged: tuple[str, str], docker_config: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, digest = staged
    assert auth_registry.user and auth_registry.password
    install_helper(tmp_path, "gatetest", {auth_registry.host: (auth_registry.user, auth_registry.password)}, monkeypatch)
    write_config(docker_config, {"credHelpers": {auth_registry.host: "gatetest"}, "credsStore": "absent-helper"})
    target = new_repo("release")

    copy_image(f"{auth_registry.host}/{repo}@{digest}", f"{auth_registry.host}/{target}:1")

    assert resolve_digest(f"{auth_registry.host}/{target}:1") == digest
    assert (tmp_path / "asked.log").read_text().splitlines()[0] == auth_registry.host


def test_creds_store_default_and_not_found_falls_back_to_auths(
    auth_registry: Registry, staged: tuple[str, str], docker_config: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, digest = staged
    assert auth_registry.user and auth_registry.password
    install_helper(tmp_path, "gatestore", {auth_registry.host: (auth_registry.user, auth_registry.password)}, monkeypatch)
    write_config(docker_config, {"credsStore": "gatestore"})
    target = new_repo("release")
    copy_image(f"{auth_registry.host}/{repo}@{digest}", f"{auth_registry.host}/{target}:1")
    assert manifest_digest(auth_registry, target, "1") == digest

    # the store has nothing for another registry: the auths entry of the file is used
    write_config(docker_config, {"credsStore": "gatestore", "auths": {"other.example:5000": {"username": "u", "password": "p"}}})
    assert load_credentials("other.example:5000") == Credentials("u", "p")
    assert load_credentials("nothing.example") is None


def test_failing_helper_is_a_clear_error_without_its_output(
    auth_registry: Registry, staged: tuple[str, str], docker_config: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, digest = staged
    install_helper(tmp_path, "gatebroken", {}, monkeypatch, secret="leaky-secret-99")
    monkeypatch.setenv("GATE_TEST_HELPER_FAIL", "1")
    write_config(docker_config, {"credHelpers": {auth_registry.host: "gatebroken"}})

    with pytest.raises(RegistryError) as err:
        copy_image(f"{auth_registry.host}/{repo}@{digest}", f"{auth_registry.host}/{new_repo()}:1")

    message = err.value.diagnostics()
    assert "docker-credential-gatebroken" in message and "exit 3" in message and auth_registry.host in message
    assert "leaky-secret-99" not in message


def test_missing_helper_is_a_clear_error(docker_config: Path) -> None:
    write_config(docker_config, {"credsStore": "gate-no-such-helper"})
    with pytest.raises(RegistryError, match="docker-credential-gate-no-such-helper .* not on PATH"):
        load_credentials("127.0.0.1:5000")


def test_malformed_docker_config_names_the_file(docker_config: Path) -> None:
    (docker_config / "config.json").write_text("{not json")
    with pytest.raises(RegistryError, match="config.json: Docker config is not valid JSON"):
        load_credentials("127.0.0.1:5000")
    write_config(docker_config, {"auths": {"r.example": {"auth": "%%%"}}})
    with pytest.raises(RegistryError, match="invalid base64"):
        load_credentials("r.example")


def test_identity_token_and_docker_hub_key(docker_config: Path) -> None:
    write_config(docker_config, {"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hubpw").decode()},
        "r.example": {"identitytoken": "refresh-abc"},
    }})
    assert load_credentials("docker.io") == Credentials("hubuser", "hubpw")
    assert load_credentials("r.example") == Credentials(identity_token="refresh-abc")
    assert "refresh-abc" not in repr(load_credentials("r.example"))


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "registry.example",
                      "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


# ------------------------------------------------------------------------------ Bearer (token) auth


def test_bearer_token_copy_asks_for_push_on_target_and_pull_on_source(
    token_registry: Registry, token_server: TokenServer, docker_config: Path
) -> None:
    src, dst = new_repo("staging"), new_repo("release")
    image = push_image(token_registry, src)
    write_config(docker_config, {"auths": {token_registry.host: {"username": token_server.user,
                                                                  "password": token_server.password}}})
    token_server.requests.clear()

    result = copy_image(f"{token_registry.host}/{src}@{image.digest}", f"{token_registry.host}/{dst}:1")

    assert sum(op.startswith("mount ") for op in result.operations) == 3
    assert manifest_digest(token_registry, dst, "1") == image.digest
    assert token_server.requests and all(r["authorized"] for r in token_server.requests)
    asked = set(token_server.requests[0]["scopes"])
    assert {f"repository:{dst}:pull,push", f"repository:{src}:pull"} <= asked
    assert len(token_server.requests) == 1  # one token serves every later request


def test_bearer_token_refused_without_credentials(
    token_registry: Registry, token_server: TokenServer
) -> None:
    src = new_repo("staging")
    image = push_image(token_registry, src)
    with pytest.raises(RegistryError) as err:
        resolve_digest(f"{token_registry.host}/{src}@{image.digest}")
    message = str(err.value)
    assert "UNAUTHORIZED" in message and token_registry.host in message and "refused anonymous access" in message
    assert f"127.0.0.1:{token_server.port}/token" in message
