"""Platforms, units: spelling (gate.models.normalize_platform), what a manifest carries
(gate.registry.manifests), which platform a report covers (gate.scanning.platforms, the Trivy plugin),
and the decision's platform line (gate.output.decision_view). End to end on a real registry:
tests/promote/test_platforms.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gate.errors import UsageError
from gate.models import ScanResult, normalize_platform
from gate.registry.manifests import DOCKER_LIST, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, OCI_INDEX, read_manifest
from gate.scanning.platforms import bind_platform
from gate.scanning.report import Report
from gate_trivy import TrivyScanner

TRIVY = Path(__file__).resolve().parent / "data" / "trivy"
A, B, C = ("sha256:" + x * 64 for x in "abc")


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def index(*entries: dict, media_type: str | None = OCI_INDEX) -> bytes:
    doc: dict = {"schemaVersion": 2, "manifests": list(entries)}
    if media_type:
        doc["mediaType"] = media_type
    return json.dumps(doc).encode()


def entry(d: str, os: str | None = "linux", arch: str | None = "amd64", variant: str | None = None, **extra: object) -> dict:
    platform = {k: v for k, v in {"os": os, "architecture": arch, "variant": variant}.items() if v is not None}
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 1,
            **({"platform": platform} if platform else {}), **extra}


@pytest.mark.parametrize(("parts", "expected"), [
    (("linux", "amd64", None), "linux/amd64"),
    (("linux", "x86_64", None), "linux/amd64"),
    (("linux", "amd64", "v1"), "linux/amd64"),
    (("linux", "amd64", "v3"), "linux/amd64/v3"),
    (("linux", "arm64", "v8"), "linux/arm64"),
    (("Linux", "AArch64", "8"), "linux/arm64"),
    (("linux", "arm", None), "linux/arm/v7"),
    (("linux", "arm", "6"), "linux/arm/v6"),
    (("linux", "armhf", None), "linux/arm/v7"),
    (("linux", "armel", None), "linux/arm/v6"),
    (("windows", "amd64", None), "windows/amd64"),
    (("linux", "s390x", ""), "linux/s390x"),
    (("linux", "amd64/../x", None), None),
    (("", "amd64", None), None),
    (("linux", "a" * 40, None), None),
])
def test_platforms_are_spelled_as_containerd_normalises_them(parts: tuple, expected: str | None) -> None:
    assert normalize_platform(*parts) == expected


def test_an_index_carries_its_platforms_without_attestations() -> None:
    raw = index(
        entry(A), entry(B, arch="arm64", variant="v8"),
        entry(C, os="unknown", arch="unknown",
              annotations={"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": A}),
    )
    info = read_manifest(raw, digest(raw), "index.json")
    assert info.is_index and info.platforms == ["linux/amd64", "linux/arm64"]
    assert info.artifact_fields() == {
        "media_type": OCI_INDEX, "platforms": ["linux/amd64", "linux/arm64"],
        "manifests": [{"digest": A, "platform": "linux/amd64"}, {"digest": B, "platform": "linux/arm64"}],
    }


def test_a_docker_manifest_list_and_an_index_without_media_type_are_indexes() -> None:
    listed = index(entry(A), entry(B, arch="arm", variant="v7"), media_type=DOCKER_LIST)
    assert read_manifest(listed, digest(listed), "list").platforms == ["linux/amd64", "linux/arm/v7"]
    bare = index(entry(A))
    assert read_manifest(bare, digest(bare), "bare").is_index
    # unknown/unknown without the annotation is no platform either (as BuildKit's older attestations)
    odd = index(entry(A), entry(B, os="unknown", arch="unknown"))
    assert read_manifest(odd, digest(odd), "odd").platforms == ["linux/amd64"]


def test_an_entry_without_a_platform_is_unknown_and_never_coverable() -> None:
    raw = index(entry(A), entry(B, os=None, arch=None), entry(C, arch="AMD64/../../x"))
    assert read_manifest(raw, digest(raw), "index.json").platforms == ["linux/amd64", "unknown"]


def test_a_single_image_manifest_carries_no_platform_list() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {}, "layers": []}).encode()
    info = read_manifest(raw, digest(raw), "image")
    assert not info.is_index and info.platforms == []
    assert info.artifact_fields() == {"media_type": DOCKER_MANIFEST}
    bare = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
    assert not read_manifest(bare, digest(bare), "bare").is_index


def test_the_bytes_must_be_the_digest_s() -> None:
    raw = index(entry(A))
    with pytest.raises(UsageError, match=r"m\.json is not the manifest of the image: its sha256 is sha256:"):
        read_manifest(raw, A, "m.json")
    # one trailing newline (a tool printing it) is forgiven: the digest is checked without it
    assert read_manifest(raw + b"\n", digest(raw), "m.json").is_index
    assert read_manifest(raw + b"\r\n", digest(raw), "m.json").is_index
    with pytest.raises(UsageError, match="is not the manifest"):
        read_manifest(b" " + raw, digest(raw), "m.json")


@pytest.mark.parametrize(("raw", "problem"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"mediaType": "application/vnd.cncf.helm.config.v1+json"}', "is not an image manifest or image index"),
    (json.dumps({"mediaType": OCI_INDEX, "manifests": {}}).encode(), "without a manifests list"),
    (index(entry("sha256:short")), r"manifests\[0\]: no sha256 digest"),
    (index("a string"), r"manifests\[0\]: not a descriptor object"),
    (index({**entry(A), "mediaType": OCI_INDEX}), "nested image indexes are not supported"),
    (b"\xff\xfe{}", "not JSON"),
])
def test_malformed_manifests_are_refused(raw: bytes, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        read_manifest(raw, digest(raw), "m.json")


def test_a_huge_manifest_is_refused_before_it_is_parsed() -> None:
    raw = b" " * (MAX_MANIFEST_BYTES + 1)
    with pytest.raises(UsageError, match="larger than"):
        read_manifest(raw, digest(raw), "m.json")


def result(platform: str | None, *digests: str) -> ScanResult:
    return ScanResult("trivy", "dev", "json", "r.json", "0" * 64, [], {}, platform=platform, image_digests=digests)


def test_how_a_report_is_bound_to_a_platform_of_the_image() -> None:
    raw = index(entry(A), entry(B, arch="arm64"))
    info = read_manifest(raw, digest(raw), "index")
    top = digest(raw)
    assert bind_platform(result(None), top, info) == (None, None)  # states no platform
    assert bind_platform(result("linux/amd64"), top, info) == ("linux/amd64", None)  # names no digest
    assert bind_platform(result("linux/amd64", top), top, info) == ("linux/amd64", None)  # via the index
    assert bind_platform(result("linux/arm64", B), top, info) == ("linux/arm64", None)  # its own manifest
    platform, note = bind_platform(result("linux/amd64", B), top, info)
    assert platform is None and note is not None and "the index's linux/arm64 manifest" in note
    platform, note = bind_platform(result("linux/amd64", C), top, info)
    assert platform is None and note == (
        f"the report is of {C}, not this image or one of its per-platform manifests: it covers no platform of it"
    )
    # without the manifest only the image's own digest binds, and an unbound report says nothing
    assert bind_platform(result("linux/amd64", A), A, None) == ("linux/amd64", None)
    assert bind_platform(result("linux/amd64", B), A, None) == (None, None)
    single = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
    platform, note = bind_platform(result("linux/amd64", B), digest(single), read_manifest(single, digest(single), "m"))
    assert platform is None and note == f"the report is of {B}, not this image: it covers no platform of it"


def scan(name: str) -> ScanResult:
    scanner = TrivyScanner()
    report = Report.open(TRIVY / name)
    fmt = scanner.detect(report)
    assert fmt is not None
    return scanner.scan(report, fmt)


def test_trivy_reports_state_the_platform_they_scanned() -> None:
    alpine = scan("trivy-image-alpine-310.json")
    assert (alpine.platform, alpine.image_digests) == ("linux/amd64", ())
    assert scan("trivy-image-alpine-310-arm64.json").platform == "linux/arm64"
    juice = scan("trivy-image-juice-shop-v12.10.2-many-vulns.json")
    assert juice.platform == "linux/amd64"
    assert juice.image_digests == ("sha256:33238f8c6291415c499265629b1b82ef791f5a33dff09f25c07264204a26f89b",)
    # a repository scan (zero-valued ImageConfig), a file-system scan, CycloneDX and the legacy array: no platform
    for name in ("trivy-repo-securecodebox-multi-results.json", "trivy-fs-npm-lang-pkgs.json",
                 "trivy-fs-npm.cyclonedx.json", "trivy-legacy-schema1-vulns-null.json"):
        assert scan(name).platform is None, name


def test_trivy_repo_digests_that_are_not_digests_are_ignored(tmp_path: Path) -> None:
    doc = json.loads((TRIVY / "trivy-image-alpine-310.json").read_text())
    doc["Metadata"]["RepoDigests"] = ["no-digest", "r@sha256:XYZ", f"r@{A}", f"s@{A}"]
    doc["Metadata"]["ImageConfig"]["variant"] = "v3"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    scanner = TrivyScanner()
    report = Report.open(path)
    found = scanner.scan(report, "json")
    assert (found.platform, found.image_digests) == ("linux/amd64/v3", (A,))
