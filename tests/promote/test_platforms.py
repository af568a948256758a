"""Multi-arch completeness end to end through the CLI, on a real image index in the local registry.

The index is built as BuildKit builds one: a linux/amd64 and a linux/arm64 (variant v8) image, plus an
attestation manifest (``unknown/unknown``, ``vnd.docker.reference.type: attestation-manifest``), all
pushed by digest with httpx, then the index under a tag. Reports: the real Trivy report of alpine 3.10
(amd64) and its copy with only the architecture changed (arm64; tests/data/trivy/SOURCES.md); where a
test needs a report bound by digest, it writes a copy of the amd64 report with ``Metadata.RepoDigests``
set to a digest of this registry (said at the test).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.decisions.events import EventQuery
from gate.decisions.interface import DecisionQuery
from gate.decisions.store import open_store
from tests.conftest import ROOT, Run
from tests.promote.gitrepo import KUSTOMIZATION, make_remote
from tests.promote.servers import (
    ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    Registry,
    _push_blob,
    _put_manifest,
    manifest_digest,
    new_repo,
    push_image,
    sha256,
)

POLICIES = ROOT / "policies"
AMD64 = "trivy/trivy-image-alpine-310.json"
ARM64 = "trivy/trivy-image-alpine-310-arm64.json"
COVERAGE = "coverage/cobertura-java-cobertura-1.9-maven-example.xml"


@dataclass(frozen=True)
class BuiltIndex:
    """A BuildKit-shaped index pushed to the registry: its digest and bytes, its images and attestation."""

    repo: str
    ref: str
    digest: str
    raw: bytes
    amd64: PushedImage
    arm64: PushedImage
    attestation: str


def push_buildx_index(registry: Registry, tag: str = "1.0") -> BuiltIndex:
    """Two platform images, one attestation manifest (as `docker buildx build --sbom=true` adds), the index."""
    repo = new_repo("staging")
    amd64 = push_image(registry, repo, content=f"{repo}\n".encode(), layers=1, arch="amd64")
    arm64 = push_image(registry, repo, content=f"{repo}\n".encode(), layers=1, arch="arm64")
    statement = json.dumps({
        "_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "pkg:docker/app", "digest": {"sha256": amd64.digest.removeprefix("sha256:")}}],
        "predicate": {"spdxVersion": "SPDX-2.3"},
    }).encode()
    with registry.client() as client:
        layer = _push_blob(client, repo, statement)
        config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode()
        config_digest = _push_blob(client, repo, config)
        attestation = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer, "size": len(statement),
                        "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
        }).encode()
        attestation_digest = _put_manifest(client, repo, sha256(attestation), attestation, OCI_MANIFEST)
        raw = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": amd64.digest, "size": len(amd64.manifest),
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": OCI_MANIFEST, "digest": arm64.digest, "size": len(arm64.manifest),
                 "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                {"mediaType": OCI_MANIFEST, "digest": attestation_digest, "size": len(attestation),
                 "annotations": {"vnd.docker.reference.digest": amd64.digest,
                                 "vnd.docker.reference.type": "attestation-manifest"},
                 "platform": {"architecture": "unknown", "os": "unknown"}},
            ],
        }, indent=2).encode()
        digest = _put_manifest(client, repo, tag, raw, OCI_INDEX)
    ref = f"{registry.host}/{repo}:{tag}@{digest}"
    return BuiltIndex(repo, ref, digest, raw, amd64, arm64, attestation_digest)


def reports(data: Path, *names: str) -> list[str]:
    args = []
    for name in names:
        args += ["--report", f"auto={data / name}"]
    return args


def evaluate(gate: Callable[..., Run], image: str, *args: str, fmt: str = "json") -> Run:
    return gate("evaluate", *args, "--policy", POLICIES, "--image", image, "--env", "prod", "--format", fmt)


def recorded() -> int:
    store = open_store()
    try:
        return len(list(store.query(DecisionQuery())))
    finally:
        store.close()


def bound_report(data: Path, tmp_path: Path, repo_digest: str, name: str = "bound.json") -> Path:
    """The real amd64 report with ``Metadata.RepoDigests`` naming ``repo_digest`` (as a registry scan
    writes it): a test-made variant, never stored in tests/data."""
    doc = json.loads((data / AMD64).read_text())
    doc["Metadata"]["RepoDigests"] = [repo_digest]
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_an_index_with_a_report_for_one_platform_is_denied_naming_the_other(
    gate: Callable[..., Run], data: Path, registry: Registry
) -> None:
    index = push_buildx_index(registry)
    run = evaluate(gate, index.ref, *reports(data, AMD64, COVERAGE), "--image-manifest", "registry", fmt="text")
    assert run.code == 1, run.err
    assert f"no report covers linux/arm64 of the index {registry.host}/{index.repo}@{index.digest}" in run.out
    assert "trivy image --platform linux/arm64" in run.out
    assert "Platforms: linux/amd64 (trivy), linux/arm64 — missing" in run.out
    assert "unknown" not in run.out  # the attestation manifest is no platform


def test_an_index_with_every_platform_reported_is_allowed_listed_and_promoted(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, validate_input: Callable[[Any], None]
) -> None:
    index = push_buildx_index(registry)
    run = evaluate(gate, index.ref, *reports(data, AMD64, ARM64, COVERAGE), "--image-manifest", "registry")
    assert run.code == 0, run.err
    decision = run.json()
    artifact = decision["input"]["artifact"]
    assert artifact["platforms"] == ["linux/amd64", "linux/arm64"]
    assert artifact["media_type"] == OCI_INDEX
    assert artifact["manifests"] == [{"digest": index.amd64.digest, "platform": "linux/amd64"},
                                     {"digest": index.arm64.digest, "platform": "linux/arm64"}]
    assert sorted(s.get("platform", "-") for s in decision["input"]["scanners"]) == ["-", "linux/amd64", "linux/arm64"]
    validate_input({k: v for k, v in decision["input"].items() if k not in ("input_parts",)})
    shown = gate("decisions", "show", decision["decision_id"])
    assert "Platforms:    linux/amd64 (trivy), linux/arm64 (trivy)" in shown.out
    markdown = gate("decisions", "show", decision["decision_id"], "--format", "markdown")
    assert "Platforms: linux/amd64 (trivy), linux/arm64 (trivy)" in markdown.out

    release = new_repo("release")
    path = "apps/cart/kustomization.yaml"
    remote = make_remote(tmp_path, {path: KUSTOMIZATION.format(release=f"{registry.host}/{release}"),
                                    "gate-environments.yaml": "paths:\n  apps: prod\n"})
    promoted = gate("promote", "--decision", decision["decision_id"], "--target", f"{registry.host}/{release}:1.0",
                    "--gitops-repo", remote.url, "--gitops-path", path, "--format", "json")
    assert promoted.code == 0, promoted.err
    assert promoted.json()["outcome"] == "done"
    assert manifest_digest(registry, release, "1.0") == index.digest
    for child in (index.amd64.digest, index.arm64.digest, index.attestation):
        assert manifest_digest(registry, release, child) == child
    assert index.digest in remote.show(path)


def test_promote_refuses_an_index_whose_decision_was_made_without_its_manifest(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    index = push_buildx_index(registry)
    decision = evaluate(gate, index.ref, *reports(data, AMD64, COVERAGE)).json()
    assert decision["outcome"] == "allow"  # without the manifest, evaluate cannot know it is an index
    release = new_repo("release")
    path = "apps/cart/kustomization.yaml"
    remote = make_remote(tmp_path, {path: KUSTOMIZATION.format(release=f"{registry.host}/{release}"),
                                    "gate-environments.yaml": "paths:\n  apps: prod\n"})
    head = remote.head()
    for extra in (["--dry-run"], []):
        run = gate("promote", "--decision", decision["decision_id"], "--target", f"{registry.host}/{release}:1.0",
                   "--gitops-repo", remote.url, "--gitops-path", path, *extra)
        assert run.code == 1, run.err
        assert f"decision {decision['decision_id']} was made without the image's manifest" in run.out
        assert "is an index of 2 platform(s) (linux/amd64, linux/arm64)" in run.out
        assert "evaluate with --image-manifest" in run.out
    assert manifest_digest(registry, release, "1.0") is None and remote.head() == head
    store = open_store()
    try:
        assert [e.outcome for e in store.events(EventQuery(decision_id=decision["decision_id"]))] == ["refused"]
    finally:
        store.close()


def test_a_single_image_promotes_as_before_and_needs_no_manifest(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    repo = new_repo("staging")
    image = push_image(registry, repo, "1.0")
    decision = evaluate(gate, f"{registry.host}/{repo}:1.0@{image.digest}", *reports(data, AMD64, COVERAGE)).json()
    assert decision["outcome"] == "allow" and "platforms" not in decision["input"]["artifact"]
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{registry.host}/{new_repo()}:1.0",
               "--dry-run")
    assert run.code == 0, run.out + run.err


def test_the_manifest_file_must_be_the_image_s_own(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    index = push_buildx_index(registry)
    with registry.client() as client:
        raw = client.get(f"/v2/{index.repo}/manifests/{index.digest}", headers={"Accept": ACCEPT}).content
    saved = tmp_path / "index.json"
    saved.write_bytes(raw)
    from_file = evaluate(gate, index.ref, *reports(data, AMD64, ARM64, COVERAGE), "--image-manifest", str(saved))
    assert from_file.code == 0, from_file.err
    assert from_file.json()["input"]["artifact"]["platforms"] == ["linux/amd64", "linux/arm64"]

    with_newline = tmp_path / "printed.json"  # as a tool that prints the manifest and a newline saves it
    with_newline.write_bytes(raw + b"\n")
    assert evaluate(gate, index.ref, *reports(data, AMD64, COVERAGE), "--image-manifest", str(with_newline)).code == 1

    before = recorded()
    other = tmp_path / "amd64.json"  # the amd64 image's manifest, given for the index
    other.write_bytes(index.amd64.manifest)
    run = evaluate(gate, index.ref, *reports(data, AMD64, COVERAGE), "--image-manifest", str(other))
    assert run.code == 2
    assert run.err.count("\n") == 1 and "Traceback" not in run.err
    assert f"is not the manifest of the image: its sha256 is {index.amd64.digest}, the image is {index.digest}" in run.err
    edited = tmp_path / "edited.json"  # the index without its arm64 entry cannot pass for it
    doc = json.loads(raw)
    doc["manifests"] = doc["manifests"][:1]
    edited.write_text(json.dumps(doc))
    assert evaluate(gate, index.ref, *reports(data, AMD64, COVERAGE), "--image-manifest", str(edited)).code == 2
    missing = evaluate(gate, index.ref, *reports(data, AMD64, COVERAGE), "--image-manifest", str(tmp_path / "nope"))
    assert missing.code == 2 and "cannot read" in missing.err
    assert recorded() == before  # nothing decided on a manifest that is not the image's


def test_the_registry_manifest_of_a_missing_image_is_exit_2(
    gate: Callable[..., Run], data: Path, registry: Registry
) -> None:
    image = f"{registry.host}/{new_repo()}@sha256:{'0' * 64}"
    run = evaluate(gate, image, *reports(data, AMD64, COVERAGE), "--image-manifest", "registry")
    assert run.code == 2 and "--image-manifest registry" in run.err and "HTTP 404" in run.err
    scan = gate("scan", *reports(data, AMD64), "--image-manifest", "registry")
    assert scan.code == 2 and "--image-manifest needs --image" in scan.err


def test_reports_are_bound_to_the_index_by_their_digests(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    index = push_buildx_index(registry)
    name = f"{registry.host}/{index.repo}"
    # scanned through the index (trivy image --platform linux/amd64 REPO@sha256:<index>)
    via_index = bound_report(data, tmp_path, f"{name}@{index.digest}", "via-index.json")
    # scanned by the amd64 manifest's own digest
    via_child = bound_report(data, tmp_path, f"{name}@{index.amd64.digest}", "via-child.json")
    # states amd64 but names the arm64 manifest: contradicts the index, covers nothing
    contradicting = bound_report(data, tmp_path, f"{name}@{index.arm64.digest}", "contradicting.json")
    for report, covers in ((via_index, True), (via_child, True), (contradicting, False)):
        run = evaluate(gate, index.ref, "--report", f"trivy={report}", *reports(data, ARM64, COVERAGE),
                       "--image-manifest", "registry")
        entry = next(s for s in run.json()["input"]["scanners"] if s["report"] == str(report))
        assert (run.code == 0) is covers, run.out
        assert ("platform" in entry) is covers
    assert entry["notes"] == [
        "the report states platform linux/amd64, but the manifest it names is the index's linux/arm64 manifest: "
        "it covers no platform"
    ]
    # a real scan of another image (bkimminich/juice-shop, by its digest) covers nothing of this one
    other = evaluate(gate, index.ref, *reports(data, "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json", ARM64,
                                                COVERAGE), "--image-manifest", "registry", fmt="text")
    assert other.code == 1
    assert "no report covers linux/amd64 of the index" in other.out
    assert "not this image or one of its per-platform manifests" in other.err


def test_required_platforms_from_the_policy_data(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    required = tmp_path / "platforms.yaml"
    required.write_text("thresholds:\n  prod:\n    platforms:\n      required: [linux/amd64, linux/arm64]\n")
    repo = new_repo("staging")
    image = push_image(registry, repo, "1.0")
    single = f"{registry.host}/{repo}:1.0@{image.digest}"
    run = evaluate(gate, single, *reports(data, AMD64, COVERAGE), "--data", str(required), fmt="text")
    assert run.code == 1
    assert "no report covers linux/arm64, required in prod" in run.out
    assert "Platforms: linux/amd64 (trivy), linux/arm64 — missing" not in run.out  # no index: only what reports cover
    assert "Platforms: linux/amd64 (trivy)" in run.out
    assert evaluate(gate, single, *reports(data, AMD64, ARM64, COVERAGE), "--data", str(required)).code == 0

    index = push_buildx_index(registry)
    arm = tmp_path / "arm.yaml"
    arm.write_text("thresholds:\n  prod:\n    platforms:\n      required: [linux/arm/v7]\n")
    lacking = evaluate(gate, index.ref, *reports(data, AMD64, ARM64, COVERAGE), "--image-manifest", "registry",
                       "--data", str(arm), fmt="text")
    assert lacking.code == 1
    assert f"the index {registry.host}/{index.repo}@{index.digest} does not carry linux/arm/v7, required in prod" in lacking.out
    misspelled = tmp_path / "v8.yaml"
    misspelled.write_text("thresholds:\n  prod:\n    platforms:\n      required: [linux/arm64/v8]\n")
    typo = evaluate(gate, single, *reports(data, AMD64, COVERAGE), "--data", str(misspelled), fmt="text")
    assert typo.code == 1 and "write linux/arm64/v8 as linux/arm64" in typo.out


def test_a_replay_keeps_the_deny_and_it_is_the_platforms_rule_that_denies(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    index = push_buildx_index(registry)
    denied = evaluate(gate, index.ref, *reports(data, AMD64, COVERAGE), "--image-manifest", "registry").json()
    assert [v["rule"] for v in denied["violations"]] == ["platforms.missing"]
    same = gate("decisions", "replay", "--policy", str(POLICIES), "--format", "json")
    assert same.code == 0, same.err
    assert same.json()["flips"] == []
    without = tmp_path / "policies"
    shutil.copytree(POLICIES, without)
    (without / "gate" / "promotion" / "platforms.rego").unlink()
    (without / "gate" / "promotion" / "platforms_test.rego").unlink()
    flipped = gate("decisions", "replay", "--policy", str(without), "--format", "json")
    assert flipped.code == 0, flipped.err
    flips = flipped.json()["flips"]
    assert [(f["decision_id"], f["before"], f["after"]) for f in flips] == [(denied["decision_id"], "deny", "allow")]



def test_a_report_of_a_platform_the_index_does_not_carry_warns(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    index = push_buildx_index(registry)
    doc = json.loads((data / AMD64).read_text())  # a test-made variant: the real report, architecture s390x
    doc["Metadata"]["ImageConfig"]["architecture"] = "s390x"
    s390x = tmp_path / "s390x.json"
    s390x.write_text(json.dumps(doc))
    run = evaluate(gate, index.ref, *reports(data, AMD64, ARM64, COVERAGE), "--report", f"trivy={s390x}",
                   "--image-manifest", "registry", fmt="text")
    assert run.code == 0, run.out + run.err
    assert f"report {s390x} covers linux/s390x, which the index" in " ".join(run.out.split())
    assert "Platforms: linux/amd64 (trivy), linux/arm64 (trivy), linux/s390x (trivy) not in the index" in run.out


def test_the_manifest_is_read_with_docker_config_credentials(
    gate: Callable[..., Run], data: Path, auth_registry: Registry, docker_config: Path
) -> None:
    index = push_buildx_index(auth_registry)
    args = (*reports(data, AMD64, ARM64, COVERAGE), "--image-manifest", "registry")
    refused = evaluate(gate, index.ref, *args)
    assert refused.code == 2 and "UNAUTHORIZED" in refused.err and auth_registry.host in refused.err
    (docker_config / "config.json").write_text(json.dumps(
        {"auths": {auth_registry.host: {"username": auth_registry.user, "password": "wrong-pw-42"}}}))
    wrong = evaluate(gate, index.ref, *args)
    assert wrong.code == 2 and "wrong-pw-42" not in wrong.err + wrong.out
    (docker_config / "config.json").write_text(json.dumps(
        {"auths": {auth_registry.host: {"username": auth_registry.user, "password": auth_registry.password}}}))
    allowed = evaluate(gate, index.ref, *args)
    assert allowed.code == 0, allowed.err
    assert allowed.json()["input"]["artifact"]["platforms"] == ["linux/amd64", "linux/arm64"]
