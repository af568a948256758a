"""Trivy's JSON report (``trivy image --format json``): SchemaVersion 2, and the legacy array.

Only the fields gate uses are declared, so msgspec skips the rest while decoding — notably the
secret ``Match`` and ``Code`` fields, which therefore never enter memory, let alone the output.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gate.models import Finding, FindingKind, Location, Package, fingerprint, normalize_platform
from gate.scanning.parsing import decode_json
from gate.scanning.report import Report
from gate_trivy.severity import severity

SCANNER = "trivy"
#: References kept per finding besides the primary advisory URL. Trivy lists dozens; they stay in
#: the report (named by its sha256), while every finding is carried into each decision record.
MAX_REFERENCES = 1
#: Trivy's ArtifactType values whose Targets are paths inside the artifact rather than files of a source tree
IMAGE_ARTIFACT_TYPES = frozenset({"container_image", "vm"})
#: ... and those whose Targets are files of the scanned source tree (``trivy fs``, ``trivy repo``)
SOURCE_ARTIFACT_TYPES = frozenset({"filesystem", "repository"})
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class _Struct(msgspec.Struct, frozen=True):
    # subclasses inherit frozen; they restate it because type checkers do not see it inherited
    pass


class PkgIdentifier(_Struct, frozen=True):
    PURL: str | None = None


class Layer(_Struct, frozen=True):
    Digest: str | None = None


class CVSSScores(_Struct, frozen=True):
    V3Score: float | None = None
    V40Score: float | None = None
    V2Score: float | None = None


class Vulnerability(_Struct, frozen=True):
    VulnerabilityID: str = ""
    PkgName: str = ""
    PkgPath: str | None = None
    PkgIdentifier: PkgIdentifier | None = None
    InstalledVersion: str | None = None
    FixedVersion: str | None = None
    Status: str | None = None
    Layer: Layer | None = None
    SeveritySource: str | None = None
    PrimaryURL: str | None = None
    Title: str | None = None
    Severity: str | None = None
    CweIDs: list[str] | None = None
    CVSS: dict[str, CVSSScores] | None = None
    References: list[str] | None = None


class CauseMetadata(_Struct, frozen=True):
    Resource: str | None = None
    StartLine: int | None = None
    EndLine: int | None = None


class Misconfiguration(_Struct, frozen=True):
    ID: str = ""
    AVDID: str | None = None
    Type: str | None = None
    Title: str | None = None
    Message: str | None = None
    Resolution: str | None = None
    Severity: str | None = None
    PrimaryURL: str | None = None
    Status: str | None = None
    CauseMetadata: CauseMetadata | None = None


class Secret(_Struct, frozen=True):
    RuleID: str = ""
    Category: str | None = None
    Severity: str | None = None
    Title: str | None = None
    StartLine: int | None = None
    EndLine: int | None = None


class License(_Struct, frozen=True):
    Name: str = ""
    Severity: str | None = None
    Category: str | None = None
    PkgName: str | None = None
    FilePath: str | None = None
    Link: str | None = None


class Result(_Struct, frozen=True):
    Target: str = ""
    Class: str | None = None
    Type: str | None = None
    Vulnerabilities: list[Vulnerability] | None = None
    Misconfigurations: list[Misconfiguration] | None = None
    Secrets: list[Secret] | None = None
    Licenses: list[License] | None = None


class TrivyTool(_Struct, frozen=True):
    Version: str | None = None


class ImageConfig(_Struct, frozen=True):
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None


class ImageMetadata(_Struct, frozen=True):
    ImageConfig: ImageConfig | None = None
    RepoDigests: list[str] | None = None


class TrivyReport(_Struct, frozen=True):
    SchemaVersion: int
    ArtifactName: str | None = None
    ArtifactType: str | None = None
    Trivy: TrivyTool | None = None
    Metadata: ImageMetadata | None = None
    Results: list[Result] | None = None


class ImageIdentity(msgspec.Struct, frozen=True):
    """Which image a scan of an image was about: its platform and the digests it names."""

    platform: str | None = None
    digests: tuple[str, ...] = ()


def read(report: Report, legacy: bool) -> tuple[list[Finding], dict[str, Any], str, ImageIdentity]:
    """Findings, metrics, Trivy's version and the scanned image's identity from a schema-2 report (or a
    legacy array, which names no image)."""
    identity = ImageIdentity()
    if legacy:
        results = decode_json(report, list[Result])
        artifact: dict[str, Any] = {}
        version = "unknown"
    else:
        doc = decode_json(report, TrivyReport)
        if doc.SchemaVersion != 2:
            raise report.error(
                f"Trivy JSON SchemaVersion {doc.SchemaVersion} is not supported (gate reads 2 and the legacy array)"
            )
        results = doc.Results or []
        artifact = {"name": doc.ArtifactName, "type": doc.ArtifactType} if doc.ArtifactName else {}
        version = (doc.Trivy.Version if doc.Trivy else None) or "unknown"
        if doc.ArtifactType == "container_image":
            identity = image_identity(doc.Metadata)
    # In a scan of an image (or VM) a Target is a path inside it, not a file of the source tree.
    image = (artifact.get("name") or "image") if artifact.get("type") in IMAGE_ARTIFACT_TYPES else None
    source_tree = artifact.get("type") in SOURCE_ARTIFACT_TYPES
    findings: list[Finding] = []
    for result in results:
        # a lock file of a source tree is where its packages' vulnerabilities are fixed
        in_lock_file = source_tree and result.Class == "lang-pkgs" and bool(result.Target)
        lock_file = Location(path=result.Target) if in_lock_file else None
        findings.extend(_vulnerability(result, v, lock_file) for v in result.Vulnerabilities or ())
        findings.extend(
            _misconfiguration(result, m, image)
            for m in result.Misconfigurations or ()
            if (m.Status or "FAIL") == "FAIL"
        )
        findings.extend(_secret(result, s, image) for s in result.Secrets or ())
        findings.extend(_license(result, lic) for lic in result.Licenses or ())
    metrics: dict[str, Any] = {"results": len(results)}
    if artifact:
        metrics["artifacts"] = [artifact]
    return findings, metrics, version, identity


def image_identity(metadata: ImageMetadata | None) -> ImageIdentity:
    """The platform (``Metadata.ImageConfig`` os/architecture/variant: the config of the image Trivy
    scanned, so the platform it really looked at) and the digests of ``Metadata.RepoDigests``
    (``repo@sha256:…``: the digest it was pulled by). A config with an empty os or architecture (Trivy
    writes zero values for non-image scans) states no platform."""
    if metadata is None:
        return ImageIdentity()
    config = metadata.ImageConfig
    platform = None
    if config is not None and config.os and config.architecture:
        platform = normalize_platform(config.os, config.architecture, config.variant)
    digests = []
    for repo_digest in metadata.RepoDigests or ():
        _, at, digest = repo_digest.rpartition("@")
        if at and _DIGEST.fullmatch(digest) and digest not in digests:
            digests.append(digest)
    return ImageIdentity(platform, tuple(digests))


def _vulnerability(result: Result, v: Vulnerability, lock_file: Location | None = None) -> Finding:
    rule = v.VulnerabilityID or "UNKNOWN"
    fixed = v.FixedVersion or None
    title = v.Title or rule
    where = f"{v.PkgName} {v.InstalledVersion or ''}".strip()
    fix = f"fixed in {fixed}" if fixed else "no fixed version"
    raw: dict[str, Any] = {"Target": result.Target}
    if v.Status is not None:
        raw["Status"] = v.Status
    if v.SeveritySource is not None:
        raw["SeveritySource"] = v.SeveritySource
    if v.CweIDs is not None:
        raw["CweIDs"] = v.CweIDs
    if v.Layer is not None and v.Layer.Digest:
        raw["Layer"] = {"Digest": v.Layer.Digest}
    return Finding(
        id=fingerprint(SCANNER, FindingKind.VULNERABILITY, rule, v.PkgName, v.PkgPath, result.Target),
        scanner=SCANNER,
        kind=FindingKind.VULNERABILITY,
        rule=rule,
        severity=severity(v.Severity),
        title=title,
        message=f"{rule} in {where} ({fix})",
        package=Package(
            name=v.PkgName,
            version=v.InstalledVersion or None,
            fixed_version=fixed,
            purl=v.PkgIdentifier.PURL if v.PkgIdentifier else None,
            type=result.Type,
            path=v.PkgPath or None,
        ),
        location=lock_file,
        cvss=_cvss(v),
        references=_references(v.PrimaryURL, v.References),
        raw=raw,
    )


def _cvss(v: Vulnerability) -> float | None:
    """The score of the source Trivy took the severity from, else NVD's, else the highest."""
    if not v.CVSS:
        return None
    preferred = [v.CVSS[s] for s in (v.SeveritySource, "nvd") if s and s in v.CVSS]
    for scores in preferred + list(v.CVSS.values()):
        score = scores.V40Score or scores.V3Score or scores.V2Score
        if score is not None:
            return score
    return None


def _references(primary: str | None, others: list[str] | None) -> tuple[str, ...]:
    refs = [primary] if primary else []
    if others:
        # a plain loop: this runs once per finding, and a generator and islice cost more than the work
        wanted = len(refs) + MAX_REFERENCES
        for ref in others:
            if ref != primary:
                refs.append(ref)
                if len(refs) == wanted:
                    break
    return tuple(refs)


def _misconfiguration(result: Result, m: Misconfiguration, image: str | None) -> Finding:
    cause = m.CauseMetadata or CauseMetadata()
    rule = m.ID or m.AVDID or "UNKNOWN"
    return Finding(
        id=fingerprint(SCANNER, FindingKind.MISCONFIGURATION, rule, result.Target, cause.Resource, m.Message),
        scanner=SCANNER,
        kind=FindingKind.MISCONFIGURATION,
        rule=rule,
        severity=severity(m.Severity),
        title=m.Title or rule,
        message=m.Message or "",
        location=Location(path=result.Target, start_line=cause.StartLine, end_line=cause.EndLine, image=image),
        references=_references(m.PrimaryURL, None),
        raw={k: v for k, v in {"AVDID": m.AVDID, "Type": m.Type, "Resolution": m.Resolution}.items() if v},
    )


def _secret(result: Result, s: Secret, image: str | None) -> Finding:
    rule = s.RuleID or "UNKNOWN"
    return Finding(
        id=fingerprint(SCANNER, FindingKind.SECRET, rule, result.Target, s.StartLine),
        scanner=SCANNER,
        kind=FindingKind.SECRET,
        rule=rule,
        severity=severity(s.Severity),
        title=s.Title or rule,
        message=f"{s.Title or rule} in {result.Target}" + (f" line {s.StartLine}" if s.StartLine else ""),
        location=Location(path=result.Target, start_line=s.StartLine, end_line=s.EndLine, image=image),
        raw={"Category": s.Category} if s.Category else None,
    )


def _license(result: Result, lic: License) -> Finding:
    rule = lic.Name or "UNKNOWN"
    what = lic.PkgName or lic.FilePath or result.Target
    return Finding(
        id=fingerprint(SCANNER, FindingKind.LICENSE, rule, lic.PkgName, lic.FilePath, result.Target),
        scanner=SCANNER,
        kind=FindingKind.LICENSE,
        rule=rule,
        severity=severity(lic.Severity),
        title=f"License {rule}",
        message=f"{what} is licensed {rule}" + (f" ({lic.Category})" if lic.Category else ""),
        package=Package(name=lic.PkgName) if lic.PkgName else None,
        location=Location(path=lic.FilePath or result.Target),
        references=_references(lic.Link, None),
    )
