"""gate.imageref: the one reference grammar, Docker Hub normalisation, and credentials refused unseen."""

from __future__ import annotations

from typing import Any

import pytest

from gate import imageref
from gate.errors import UsageError
from tests.conftest import DIGEST


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", None, None),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20", None),
        ("docker.io/team/app:1", "docker.io", "team/app", "1", None),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", None, None),
        ("registry-1.docker.io/library/busybox", "docker.io", "library/busybox", None, None),
        ("team/app", "docker.io", "team/app", None, None),
        ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None),
        ("localhost/app", "localhost", "app", None, None),
        ("[::1]:5000/app:v1", "[::1]:5000", "app", "v1", None),
        ("127.0.0.1:5000/a/b/c:t@sha256:" + "a" * 64, "127.0.0.1:5000", "a/b/c", "t", "sha256:" + "a" * 64),
        ("ghcr.io/org/app@sha256:" + "b" * 64, "ghcr.io", "org/app", None, "sha256:" + "b" * 64),
        ("ghcr.io/org/my__app-x.y", "ghcr.io", "org/my__app-x.y", None, None),
    ],
)
def test_parse(ref: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    parsed = imageref.parse(ref)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == (registry, repository, tag, digest)
    assert str(parsed) == imageref.join(f"{registry}/{repository}", tag, digest)


@pytest.mark.parametrize(
    "ref", ["", "UPPER/case", "a/b:bad tag", "a/b@sha256:short", "a//b", "host:5000/", "a/b:", "Host.io/app", "a/-b"]
)
def test_parse_refuses_malformed(ref: str) -> None:
    with pytest.raises(UsageError):
        imageref.parse(ref)


@pytest.mark.parametrize("ref", [f"a/b:1\n@{DIGEST}", f"a/b\n:1@{DIGEST}", f"a/b:1@{DIGEST}\n@{DIGEST}"])
def test_a_line_break_inside_a_reference_is_refused(ref: str) -> None:
    # ``$`` also matches before a final newline: every part of a reference must match whole
    with pytest.raises(UsageError):
        imageref.parse(ref)


@pytest.mark.parametrize(
    "spelling",
    ["nginx", "docker.io/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx",
     "registry-1.docker.io/library/nginx", "nginx:1.27", f"docker.io/library/nginx:1.27@{DIGEST}", f"nginx@{DIGEST}"],
)
def test_every_docker_hub_spelling_is_one_repository(spelling: str) -> None:
    assert imageref.canonical(spelling) == "docker.io/library/nginx"
    assert imageref.same_repository(spelling, "nginx")
    assert imageref.parse(spelling).name == "docker.io/library/nginx"


def test_other_repositories_stay_apart() -> None:
    assert imageref.canonical("team/app") == "docker.io/team/app"
    assert not imageref.same_repository("nginx", "ghcr.io/library/nginx")
    assert not imageref.same_repository("nginx", "library/nginx-unprivileged")
    assert not imageref.same_repository("localhost:5000/app", "localhost:5001/app")
    assert not imageref.same_repository("", "")  # a placeholder matches nothing
    assert imageref.canonical("localhost:5000/app:1") == "localhost:5000/app"  # a port is not a tag


def test_digest_of_needs_a_valid_pinned_reference() -> None:
    assert imageref.digest_of(f"registry.example.com/shop/web:1.0@{DIGEST}") == DIGEST
    assert imageref.digest_of("registry.example.com/shop/web:1.0") is None
    # The old admission regex only looked at the end of the string: these are not references at all
    assert imageref.digest_of(f"Not A Reference@{DIGEST}") is None
    assert imageref.digest_of(f"user:pw@host/app@{DIGEST}") is None


def test_parse_pinned_keeps_the_repository_as_written() -> None:
    pinned = imageref.parse_pinned(f"nginx:1.27@{DIGEST}")
    assert (pinned.image, pinned.tag, pinned.digest) == ("nginx", "1.27", DIGEST)
    with pytest.raises(UsageError, match="not pinned by digest"):
        imageref.parse_pinned("nginx:1.27")
    with pytest.raises(UsageError, match="must be REGISTRY/REPO:TAG"):
        imageref.require_tag(f"ghcr.io/a/b@{DIGEST}")
    with pytest.raises(UsageError, match="repository only"):
        imageref.require_repository("ghcr.io/a/b:1")


SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "ref",
    [
        f"user:{SECRET}@registry.example.com/shop/web:1.0",
        f"user:{SECRET}@registry.example.com/shop/web@{DIGEST}",
        f"user:{SECRET}@nginx",
        f"user:{SECRET}@nginx:latest",
        f"https://user:{SECRET}@registry.example.com/shop/web:1.0",
        f"https://registry.example.com/shop/web:1.0?token={SECRET}",
        f"oci://{SECRET}@registry.example.com/shop/web@{DIGEST}",
    ],
)
def test_credentials_in_a_reference_are_refused_and_never_echoed(ref: str) -> None:
    for parse in (imageref.parse, imageref.parse_pinned, imageref.require_tag, imageref.require_digest):
        with pytest.raises(UsageError) as caught:
            parse(ref)
        message = caught.value.diagnostics()
        assert SECRET not in message and "example.com" not in message
        assert "not shown" in message


# --- through the CLI: refused before anything is read, recorded or printed --------------------------


def test_evaluate_refuses_credentials_in_the_image_and_records_nothing(gate: Any, data: Any, decision_store: Any) -> None:
    for image in (f"user:{SECRET}@registry.example.com/shop/web@{DIGEST}",
                  f"https://user:{SECRET}@registry.example.com/shop/web@{DIGEST}"):
        run = gate("evaluate", "--report", f"auto={data / 'trivy/trivy-image-alpine-310.json'}",
                   "--image", image, "--env", "prod", "--format", "json")
        assert run.code == 2 and run.out == ""
        assert SECRET not in run.err and "credentials" in run.err
    assert not decision_store.exists() or SECRET.encode() not in decision_store.read_bytes()


def test_promote_refuses_credentials_in_target_and_source_and_records_nothing(gate: Any, decision_store: Any) -> None:
    cases = [
        ["--target", f"user:{SECRET}@registry.example.com/release/web:1.0"],
        ["--target", f"https://user:{SECRET}@registry.example.com/release/web:1.0"],
        ["--target", "registry.example.com/release/web:1.0",
         "--source", f"user:{SECRET}@registry.example.com/shop/web@{DIGEST}"],
    ]
    for flags in cases:
        run = gate("promote", "--decision", "01JAAAAAAAAAAAAAAAAAAAAAAA", *flags, "--format", "json")
        assert run.code == 2 and run.out == "", run.out
        assert SECRET not in run.err and "credentials" in run.err, run.err
    assert not decision_store.exists() or SECRET.encode() not in decision_store.read_bytes()
