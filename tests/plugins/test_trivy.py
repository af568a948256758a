"""The Trivy plugin on real Trivy reports (tests/data/trivy, see SOURCES.md there)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gate.errors import ReportError
from gate.models import FindingKind, ScanResult, Severity
from gate.scanning.report import Report
from gate_trivy import TrivyScanner

TRIVY = Path(__file__).resolve().parent.parent / "data" / "trivy"


def scan(name: str) -> ScanResult:
    scanner = TrivyScanner()
    report = Report.open(TRIVY / name)
    fmt = scanner.detect(report)
    assert fmt is not None, f"{name} not detected as Trivy"
    return scanner.scan(report, fmt)


def severities(result: ScanResult, kind: FindingKind) -> Counter[str]:
    return Counter(f.severity.value for f in result.findings if f.kind is kind)


def test_juice_shop_counts_match_the_report() -> None:
    result = scan("trivy-image-juice-shop-v12.10.2-many-vulns.json")
    assert result.format == "json"
    assert severities(result, FindingKind.VULNERABILITY) == {"critical": 28, "high": 100, "medium": 48, "low": 6}
    assert len({f.rule for f in result.findings if f.kind is FindingKind.VULNERABILITY}) == 114
    assert severities(result, FindingKind.SECRET) == {"high": 2, "medium": 1}
    assert result.metrics["results"] == 5
    # no Trivy block in this real scan: the version is unknown, not invented
    assert result.scanner_version == "unknown"


def test_same_cve_in_two_packages_is_two_findings_with_distinct_ids() -> None:
    result = scan("trivy-image-juice-shop-v12.10.2-many-vulns.json")
    ids = [f.id for f in result.findings]
    assert len(ids) == len(set(ids)) == 185
    minimist = [f for f in result.findings if f.rule == "CVE-2021-44906"]
    assert len(minimist) == 4
    assert len({(f.package.name, f.package.version, f.package.path) for f in minimist if f.package}) == 4


def test_vulnerability_fields_are_normalized() -> None:
    result = scan("trivy-image-alpine-310.json")
    assert result.scanner_version == "dev"
    assert len(result.findings) == 4
    f = next(f for f in result.findings if f.rule == "CVE-2019-1551" and f.package and f.package.name == "libssl1.1")
    assert f.severity is Severity.MEDIUM
    assert f.package.version == "1.1.1c-r0"
    assert f.package.fixed_version == "1.1.1d-r2"
    assert f.package.purl == "pkg:apk/alpine/libssl1.1@1.1.1c-r0?arch=x86_64&distro=3.10.2"
    assert f.package.type == "alpine"
    assert f.raw is not None and f.raw["Layer"]["Digest"].startswith("sha256:9d48c3bd")
    assert f.raw["Status"] == "fixed"
    assert f.cvss is not None and 0 < f.cvss <= 10
    assert "CVE-2019-1551 in libssl1.1 1.1.1c-r0 (fixed in 1.1.1d-r2)" == f.message


def test_affected_without_fix_says_so() -> None:
    result = scan("trivy-image-juice-shop-v12.10.2-many-vulns.json")
    unfixed = [f for f in result.findings if f.kind is FindingKind.VULNERABILITY and f.package.fixed_version is None]
    assert len(unfixed) == 12
    assert all(f.raw["Status"] == "affected" and "no fixed version" in f.message for f in unfixed)


def test_ids_are_stable_across_runs_and_copies(tmp_path: Path) -> None:
    copy = tmp_path / "next-build.json"
    copy.write_bytes((TRIVY / "trivy-image-alpine-310.json").read_bytes())
    first = scan("trivy-image-alpine-310.json")
    scanner = TrivyScanner()
    again = scanner.scan(Report.open(copy), "json")
    assert [f.id for f in first.findings] == [f.id for f in again.findings]


def test_results_without_vulnerabilities_key_and_custom_class() -> None:
    result = scan("trivy-image-spring4shell-jre11-jar.json")
    assert result.metrics["results"] == 3
    [f] = result.findings
    assert (f.rule, f.severity, f.package.name, f.package.fixed_version) == (
        "CVE-2022-22965",
        Severity.CRITICAL,
        "org.springframework:spring-beans",
        "5.3.18",
    )


def test_multi_result_repository_scan() -> None:
    result = scan("trivy-repo-securecodebox-multi-results.json")
    assert result.metrics["results"] == 29
    assert severities(result, FindingKind.VULNERABILITY) == {"critical": 5, "high": 15, "medium": 21, "low": 1}
    assert len([f for f in result.findings if f.kind is FindingKind.SECRET]) == 1


def test_misconfiguration_failures() -> None:
    result = scan("trivy-config-dockerfile-misconfig.json")
    [f] = result.findings
    assert (f.kind, f.rule, f.severity) == (FindingKind.MISCONFIGURATION, "DS-0002", Severity.HIGH)
    assert f.location is not None and f.location.path == "Dockerfile"
    assert "USER" in f.message


def test_secrets_keep_location_but_never_the_secret() -> None:
    result = scan("trivy-fs-secrets.json")
    by_rule = {f.rule: f for f in result.findings}
    assert set(by_rule) == {"aws-access-key-id", "mysecret"}
    assert by_rule["aws-access-key-id"].severity is Severity.CRITICAL
    assert by_rule["mysecret"].location.start_line == 7
    assert "ghp_" not in repr(result)


def test_locations_say_whether_they_are_inside_an_image() -> None:
    """A Target of an image scan is a path inside the image (SARIF must not call it a repository file)."""
    in_image = [f for f in scan("trivy-image-juice-shop-v12.10.2-many-vulns.json").findings if f.location]
    assert len(in_image) == 3 and {f.kind for f in in_image} == {FindingKind.SECRET}
    assert {f.location.image for f in in_image if f.location} == {"bkimminich/juice-shop:v12.10.2"}
    assert all(f.location.path.startswith("/juice-shop/") for f in in_image if f.location)
    for name in ("trivy-fs-secrets.json", "trivy-config-helm-testchart-misconfig-lines.json"):
        located = [f for f in scan(name).findings if f.location]
        assert located and all(f.location.image is None for f in located if f.location), name
    # a vulnerability of a source tree's lock file is located in that file; one of an image is not
    (jquery,) = [f for f in scan("trivy-fs-npm-lang-pkgs.json").findings if f.kind is FindingKind.VULNERABILITY]
    assert jquery.location is not None and (jquery.location.path, jquery.location.image) == ("package-lock.json", None)
    image = scan("trivy-image-juice-shop-v12.10.2-many-vulns.json").findings
    assert not any(f.location for f in image if f.kind is FindingKind.VULNERABILITY)
    helm = {f.rule: f.location for f in scan("trivy-config-helm-testchart-misconfig-lines.json").findings}
    assert helm["KSV-0118"] is not None
    assert (helm["KSV-0118"].path, helm["KSV-0118"].start_line, helm["KSV-0118"].end_line) == (
        "templates/deployment.yaml",
        23,
        57,
    )


def test_report_without_results_is_empty_and_says_so() -> None:
    result = scan("trivy-image-alpine-39-no-results-key.json")
    assert result.findings == []
    assert result.metrics["results"] == 0
    assert any("no Results" in note for note in result.notes)


def test_legacy_schema_with_null_lists() -> None:
    result = scan("trivy-legacy-schema1-vulns-null.json")
    assert result.format == "json-legacy"
    assert result.metrics["results"] == 6
    assert len(result.findings) == 7
    # an entry without an id or severity is kept as unknown, never dropped
    [odd] = [f for f in result.findings if f.rule == "UNKNOWN"]
    assert odd.severity is Severity.UNKNOWN and odd.package.name == "simplito/elliptic-php"


def test_cyclonedx() -> None:
    result = scan("trivy-fs-npm.cyclonedx.json")
    assert result.format == "cyclonedx"
    assert result.scanner_version == "dev"
    assert result.metrics["components"] == 13
    [f] = result.findings
    assert f.rule == "CVE-2019-11358"
    assert f.severity is Severity.MEDIUM
    assert (f.package.name, f.package.version, f.package.fixed_version) == ("jquery", "3.3.9", "3.4.0")
    assert f.package.purl == "pkg:npm/jquery@3.3.9"
    assert f.package.type == "npm"


def test_lang_pkgs_result_with_package_list() -> None:
    result = scan("trivy-fs-npm-lang-pkgs.json")
    [f] = result.findings
    assert f.kind is FindingKind.VULNERABILITY and f.package.type == "npm"


def test_sarif_is_refused_with_what_to_produce_instead() -> None:
    with pytest.raises(ReportError, match="trivy image --format json"):
        scan("trivy-image-alpine-310.sarif.json")


def test_schema_version_other_than_2_is_refused(tmp_path: Path) -> None:
    report = tmp_path / "v3.json"
    report.write_text('{"SchemaVersion": 3, "Results": []}')
    with pytest.raises(ReportError, match="SchemaVersion 3 is not supported"):
        TrivyScanner().scan(Report.open(report), "json")


def test_wrong_types_name_the_json_path(tmp_path: Path) -> None:
    report = tmp_path / "bad.json"
    report.write_text('{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{"Severity": 5}]}]}')
    with pytest.raises(ReportError, match=r"Results\[0\]\.Vulnerabilities\[0\]\.Severity"):
        TrivyScanner().scan(Report.open(report), "json")


def test_merge_adds_counts_of_several_reports() -> None:
    image = scan("trivy-image-alpine-310.json")
    config = scan("trivy-config-dockerfile-misconfig.json")
    merged = TrivyScanner().merge_metrics([image.metrics, config.metrics])
    assert merged["counts"] == {"vulnerability": {"medium": 4}, "misconfiguration": {"high": 1}}
    assert merged["results"] == 2
    assert len(merged["artifacts"]) == 2


@pytest.mark.parametrize(
    "content",
    [
        '{"runs": [], "$schema": "https://json.schemastore.org/sarif-2.1.0.json"}',
        '{"meta": {"format": 3}, "files": {}}',
        "<coverage line-rate='1'/>",
        '{"projectStatus": {"status": "OK"}}',
    ],
)
def test_does_not_claim_other_tools_reports(tmp_path: Path, content: str) -> None:
    report = tmp_path / "other.json"
    report.write_text(content)
    assert TrivyScanner().detect(Report.open(report)) is None


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    report = tmp_path / "bom.json"
    report.write_bytes(b"\xef\xbb\xbf" + (TRIVY / "trivy-image-alpine-310.json").read_bytes())
    scanner = TrivyScanner()
    opened = Report.open(report)
    assert scanner.detect(opened) == "json"
    assert len(scanner.scan(opened, "json").findings) == 4


def _cyclonedx_variant(tmp_path: Path, **changes: object) -> Path:
    """The real CycloneDX report with top-level keys replaced (``None`` removes the key)."""
    import json

    bom = json.loads((TRIVY / "trivy-fs-npm.cyclonedx.json").read_text())
    for key, value in changes.items():
        if value is None:
            bom.pop(key, None)
        else:
            bom[key] = value
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(bom))
    return path


@pytest.mark.parametrize("absent", ["removed", "null"])
def test_cyclonedx_sbom_without_vulnerabilities_is_not_a_vulnerability_scan(tmp_path: Path, absent: str) -> None:
    """`trivy --format cyclonedx` without `--scanners vuln` writes an SBOM: no `vulnerabilities` key. Read as
    a clean scan it would satisfy a required trivy scan; it is refused instead (issue 10, item 5)."""
    path = _cyclonedx_variant(tmp_path, vulnerabilities=None)
    if absent == "null":
        path.write_text(path.read_text()[:-1] + ', "vulnerabilities": null}')
    scanner = TrivyScanner()
    report = Report.open(path)
    assert scanner.detect(report) == "cyclonedx"
    with pytest.raises(ReportError) as e:
        scanner.scan(report, "cyclonedx")
    assert str(e.value) == (
        f"{path}: CycloneDX document has no vulnerabilities: it is an SBOM, not a vulnerability scan "
        "(run trivy with --scanners vuln --format cyclonedx)"
    )


def test_cyclonedx_with_an_empty_vulnerability_list_is_a_clean_scan(tmp_path: Path) -> None:
    path = _cyclonedx_variant(tmp_path, vulnerabilities=[])
    result = TrivyScanner().scan(Report.open(path), "cyclonedx")
    assert result.findings == [] and result.metrics["components"] == 13
