"""The coverage plugin on real coverage reports (tests/data/coverage, see SOURCES.md there).

Expected values are taken from the files themselves: their own totals where those are right, and
counted from their entries where the files were cut down and their totals no longer add up.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from gate.errors import ReportError, UsageError
from gate.models import ScanResult
from gate.scanning.report import Report
from gate_coverage import CoverageScanner
from tests.conftest import Run

COVERAGE = Path(__file__).resolve().parent.parent / "data" / "coverage"
BAD = COVERAGE / "bad"

FORMATS = {
    "cobertura-coveragepy-5.0a2-branch.xml": "cobertura",
    "cobertura-coveragepy-6.3.2-multi-package.xml": "cobertura",
    "cobertura-java-cobertura-1.9-maven-example.xml": "cobertura",
    "jacoco-report-raw-oneline.xml": "jacoco",
    "jacoco-aggregate-report-groups.xml": "jacoco",
    "lcov-c8-multi-file-edgecases.info": "lcov",
    "lcov-istanbul-typescript.info": "lcov",
    "coveragepy-7.8.0-branch.json": "coveragepy-json",
    "clover-istanbul-unleash.xml": "clover",
    "clover-phpunit-phpcsutils.xml": "clover",
    "go-coverprofile-chi-mode-set.out": "go-coverprofile",
}

TOTAL_KEYS = ["line_rate", "branch_rate", "lines_covered", "lines_valid", "branches_covered", "branches_valid", "files"]
FILE_KEYS = ["line_rate", "lines_covered", "lines_valid", "branch_rate", "branches_covered", "branches_valid"]


def scan(path: Path) -> ScanResult:
    scanner = CoverageScanner()
    report = Report.open(path)
    fmt = scanner.detect(report)
    assert fmt is not None, f"{path.name} not detected as coverage"
    return scanner.scan(report, fmt)


def totals(result: ScanResult) -> dict[str, Any]:
    """The metrics without the per-file entries."""
    return {k: v for k, v in result.metrics.items() if k != "files"}


def written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- detection -----------------------------------------------------------------------------------


def test_the_corpus_is_complete() -> None:
    present = {p.name for p in COVERAGE.iterdir() if p.is_file() and p.name != "SOURCES.md"}
    assert present == set(FORMATS)
    sources = (COVERAGE / "SOURCES.md").read_text()
    assert all(f"coverage/{name} " in sources for name in FORMATS)
    assert all(f"bad/{p.name} " in sources for p in BAD.iterdir())


@pytest.mark.parametrize(("name", "fmt"), FORMATS.items())
def test_every_report_is_detected_from_its_content(name: str, fmt: str, tmp_path: Path) -> None:
    # under a misleading name, so the file name cannot be what decides
    decoy = tmp_path / ("coverage.json" if fmt != "coveragepy-json" else "coverage.xml")
    shutil.copyfile(COVERAGE / name, decoy)
    assert CoverageScanner().detect(Report.open(decoy)) == fmt


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            '{\n  "SchemaVersion": 2,\n  "ArtifactName": "alpine:3.10",\n  "ArtifactType": "container_image",\n'
            '  "Results": [{"Target": "alpine:3.10 (alpine 3.10.2)", "Class": "os-pkgs", "Vulnerabilities": []}]\n}\n',
            id="trivy-json",
        ),
        pytest.param('[{"Target": "Pipfile.lock", "Vulnerabilities": null}]', id="trivy-legacy"),
        pytest.param(
            '{"projectStatus": {"status": "OK", "conditions": [{"metricKey": "coverage", "actualValue": "81.2"}]}}',
            id="sonar-quality-gate",
        ),
        pytest.param(
            '{"total": 1, "p": 1, "ps": 100, "paging": {}, "issues": [], "components": []}', id="sonar-issues"
        ),
        pytest.param('{"meta": {"version": "1"}, "data": []}', id="json-with-meta"),
        pytest.param(
            '<?xml version="1.0"?>\n<testsuite name="t" tests="1"><testcase name="a"/></testsuite>', id="junit"
        ),
        pytest.param('<?xml version="1.0"?>\n<report><stats><packages value="4"/></stats></report>', id="emma"),
        pytest.param('<coverage profilerVersion="1.5.8" driverVersion="1.5.8"><module/></coverage>', id="ncover"),
        pytest.param("mode: sets\nfoo.go:1.1,2.2 1 1\n", id="not-a-go-mode"),
        pytest.param("def f():\n    return 1\n", id="python-source"),
    ],
)
def test_other_reports_are_not_claimed(text: str, tmp_path: Path) -> None:
    assert CoverageScanner().detect(Report.open(written(tmp_path, "coverage.xml", text))) is None


def test_detection_of_a_hostile_head_does_not_backtrack(tmp_path: Path) -> None:
    # An ambiguous prolog pattern takes 2^n steps on this (n = 5000); a regression shows as a hang.
    path = written(tmp_path, "coverage.xml", "<!DOCTYPE coverage " + "[a]" * 5000 + "\n")
    assert CoverageScanner().detect(Report.open(path)) is None


def test_pretty_printed_coveragepy_json_is_detected_and_read_alike(tmp_path: Path) -> None:
    compact = COVERAGE / "coveragepy-7.8.0-branch.json"
    pretty = written(tmp_path, "pretty.json", json.dumps(json.loads(compact.read_text()), indent=4))
    assert scan(pretty).metrics == scan(compact).metrics


# --- Cobertura -----------------------------------------------------------------------------------


def test_cobertura_coveragepy_branch_gold_file() -> None:
    result = scan(COVERAGE / "cobertura-coveragepy-5.0a2-branch.xml")
    assert (result.scanner, result.format, result.scanner_version) == ("coverage", "cobertura", "5.0a2")
    assert result.findings == []
    assert list(result.metrics) == TOTAL_KEYS
    assert totals(result) == {
        "line_rate": 0.8,
        "branch_rate": 0.5,
        "lines_covered": 4,
        "lines_valid": 5,
        "branches_covered": 1,
        "branches_valid": 2,
    }
    assert list(result.metrics["files"]) == ["y.py"]
    assert list(result.metrics["files"]["y.py"]) == FILE_KEYS
    assert result.notes == ()


def test_cobertura_multi_package_matches_the_report_line_by_line() -> None:
    path = COVERAGE / "cobertura-coveragepy-6.3.2-multi-package.xml"
    result = scan(path)
    assert result.scanner_version == "6.3.2"
    assert result.report == str(path)
    assert result.report_sha256 == Report.open(path).sha256
    # root: lines-valid="1530" lines-covered="489" line-rate="0.3196"; branches off
    assert totals(result) == {
        "line_rate": round(489 / 1530, 6),
        "branch_rate": None,
        "lines_covered": 489,
        "lines_valid": 1530,
        "branches_covered": 0,
        "branches_valid": 0,
    }
    assert result.notes == ()
    files = result.metrics["files"]
    tree = ElementTree.parse(path)
    classes = list(tree.iter("class"))
    assert len(list(tree.iter("package"))) == 10
    assert len(classes) == len(files) == 47
    assert {p.split("/")[0] for p in files} >= {"logger", "monitor", "step_utils", "testing", "utils"}
    assert files["logger/config.py"] == {
        "line_rate": round(23 / 29, 6),
        "lines_covered": 23,
        "lines_valid": 29,
        "branch_rate": None,
        "branches_covered": 0,
        "branches_valid": 0,
    }
    # a file with no statements has no rate (the report writes line-rate="1" for it)
    assert files["logger/__init__.py"]["line_rate"] is None
    for cls in classes:
        entry = files[cls.get("filename")]
        if entry["lines_valid"]:
            assert round(entry["line_rate"], 4) == float(cls.get("line-rate")), cls.get("filename")


def test_cobertura_java_counts_each_line_once_and_reads_conditions() -> None:
    # every line is listed twice (under <methods> and under <class>); the root gives rates only
    result = scan(COVERAGE / "cobertura-java-cobertura-1.9-maven-example.xml")
    assert result.scanner_version == "1.9"
    assert totals(result) == {
        "line_rate": 0.9,
        "branch_rate": 0.75,
        "lines_covered": 27,
        "lines_valid": 30,
        "branches_covered": 9,
        "branches_valid": 12,
    }
    files = result.metrics["files"]
    assert set(files) == {
        "Main.java",
        "search/BinarySearch.java",
        "search/ISortedArraySearch.java",
        "search/LinearSearch.java",
    }
    assert files["search/LinearSearch.java"]["branch_rate"] == round(4 / 6, 6)
    assert files["search/ISortedArraySearch.java"]["line_rate"] is None
    assert result.notes == ()


def test_cobertura_file_split_over_classes_counts_lines_once(tmp_path: Path) -> None:
    path = written(
        tmp_path,
        "coverage.xml",
        """<?xml version="1.0"?>
<coverage line-rate="0.75" lines-valid="4" lines-covered="3" branch-rate="0.5" branches-valid="2" branches-covered="1">
  <packages><package name="app"><classes>
    <class name="app.Outer" filename="app/Outer.java"><lines>
      <line number="1" hits="1"/><line number="2" hits="0"/>
      <line number="3" hits="2" branch="true" condition-coverage="50% (1/2)"/>
    </lines></class>
    <class name="app.Outer$Inner" filename="app/Outer.java"><lines>
      <line number="2" hits="4"/><line number="3" hits="2" branch="true" condition-coverage="0% (0/2)"/>
      <line number="9" hits="0"/>
    </lines></class>
  </classes></package></packages>
</coverage>""",
    )
    result = scan(path)
    assert result.metrics["files"]["app/Outer.java"]["lines_valid"] == 4
    assert totals(result)["lines_covered"] == 3
    assert (totals(result)["branches_covered"], totals(result)["branches_valid"]) == (1, 2)
    assert result.notes == ()


def test_cobertura_totals_that_disagree_are_noted(tmp_path: Path) -> None:
    text = (COVERAGE / "cobertura-coveragepy-5.0a2-branch.xml").read_text()
    path = written(tmp_path, "coverage.xml", text.replace('lines-valid="5"', 'lines-valid="50"'))
    result = scan(path)
    assert totals(result)["lines_valid"] == 5
    [note] = result.notes
    assert "says 50 lines" in note and "add up to 5 lines" in note and "using the entries" in note


# --- JaCoCo --------------------------------------------------------------------------------------


def test_jacoco_one_line_report() -> None:
    result = scan(COVERAGE / "jacoco-report-raw-oneline.xml")
    assert (result.format, result.scanner_version) == ("jacoco", "unknown")
    files = result.metrics["files"]
    # the report's LINE counter: missed 1, covered 5; BRANCH: missed 2, covered 2
    assert files["com/jacocodemo/examples/MessageBuilder.java"] == {
        "line_rate": round(5 / 6, 6),
        "lines_covered": 5,
        "lines_valid": 6,
        "branch_rate": 0.5,
        "branches_covered": 2,
        "branches_valid": 4,
    }
    # an empty <sourcefile> is listed, with nothing to rate
    assert files["com/jacocodemo/examples/Info.java"]["line_rate"] is None
    assert result.notes == ()


def test_jacoco_aggregate_reads_every_group_and_notes_the_counters() -> None:
    path = COVERAGE / "jacoco-aggregate-report-groups.xml"
    assert [g.get("name") for g in ElementTree.parse(path).iter("group")] == ["module-1", "module-2", "module-3"]
    result = scan(path)
    files = result.metrics["files"]
    assert {p.rsplit("/", 1)[0] for p in files} == {"com/madrapps/text", "com/madrapps/math", "com/madrapps/playground"}
    assert len(files) == 7
    assert files["com/madrapps/math/Math.kt"]["lines_covered"] == 5
    assert files["com/madrapps/playground/MainActivity.kt"]["line_rate"] == 0.0
    assert totals(result) == {
        "line_rate": round(10 / 28, 6),
        "branch_rate": None,
        "lines_covered": 10,
        "lines_valid": 28,
        "branches_covered": 0,
        "branches_valid": 0,
    }
    # the fixture was cut down: the report-level counters still describe the whole project
    [note] = result.notes
    assert "says 9823 lines, 7593 lines covered, 2066 branches" in note
    assert "add up to 28 lines, 10 lines covered, 0 branches" in note


# --- LCOV ----------------------------------------------------------------------------------------


def test_lcov_c8_edge_cases() -> None:
    result = scan(COVERAGE / "lcov-c8-multi-file-edgecases.info")
    files = result.metrics["files"]
    assert list(files) == ["dist/<define:DATA>", "spec/fixtures/lcov/index.js", "spec/fixtures/lcov/lib/run.js"]
    # LF:14 LH:13 (DA:35,0 missed; DA:13 with 2^64-1 hits is covered), BRF:8 BRH:7
    run = files["spec/fixtures/lcov/lib/run.js"]
    assert (run["lines_covered"], run["lines_valid"], run["branches_covered"], run["branches_valid"]) == (13, 14, 7, 8)
    assert totals(result) == {
        "line_rate": round(16 / 17, 6),
        "branch_rate": 0.875,
        "lines_covered": 16,
        "lines_valid": 17,
        "branches_covered": 7,
        "branches_valid": 8,
    }
    assert files["dist/<define:DATA>"]["branch_rate"] is None
    assert result.notes == ()


def test_lcov_istanbul_with_trailing_space() -> None:
    result = scan(COVERAGE / "lcov-istanbul-typescript.info")
    assert result.metrics["files"]["src/calculator.ts"] == {
        "line_rate": 1.0,
        "lines_covered": 16,
        "lines_valid": 16,
        "branch_rate": 1.0,
        "branches_covered": 11,
        "branches_valid": 11,
    }
    assert result.notes == ()


def test_lcov_records_of_one_file_merge_and_unreached_branches_count_as_missed(tmp_path: Path) -> None:
    path = written(
        tmp_path,
        "lcov.info",
        "TN:unit\nSF:src/a.js\nDA:1,1\nDA:2,0\nBRDA:2,0,0,-\nBRDA:2,0,1,0\nLF:2\nLH:1\nBRF:2\nBRH:0\nend_of_record\n"
        "TN:e2e\nSF:src/a.js\nDA:1,0\nDA:2,3\nBRDA:2,0,0,1\nBRDA:2,0,1,-\nLF:2\nLH:1\nBRF:2\nBRH:1\nend_of_record\n",
    )
    result = scan(path)
    assert result.metrics["files"]["src/a.js"] == {
        "line_rate": 1.0,
        "lines_covered": 2,
        "lines_valid": 2,
        "branch_rate": 0.5,
        "branches_covered": 1,
        "branches_valid": 2,
    }
    assert result.notes == ()  # each record's LF/LH/BRF/BRH agree with that record


def test_lcov_record_totals_that_disagree_are_noted(tmp_path: Path) -> None:
    path = written(tmp_path, "lcov.info", "SF:src/a.js\nDA:1,1\nDA:2,0\nLF:5\nLH:1\nend_of_record\n")
    [note] = scan(path).notes
    assert "says 5 lines, 1 lines covered" in note and "add up to 2 lines, 1 lines covered" in note


# --- coverage.py JSON ----------------------------------------------------------------------------


def test_coveragepy_json() -> None:
    result = scan(COVERAGE / "coveragepy-7.8.0-branch.json")
    assert (result.format, result.scanner_version) == ("coveragepy-json", "7.8.0")
    t = totals(result)
    # totals: covered_lines 2139 of num_statements 3009, covered_branches 498 of num_branches 804
    assert t == {
        "line_rate": round(2139 / 3009, 6),
        "branch_rate": round(498 / 804, 6),
        "lines_covered": 2139,
        "lines_valid": 3009,
        "branches_covered": 498,
        "branches_valid": 804,
    }
    # coverage.py's own 69.16 % counts statements and branches together; line_rate is lines only
    combined = (t["lines_covered"] + t["branches_covered"]) / (t["lines_valid"] + t["branches_valid"])
    assert round(combined * 100, 2) == 69.16
    files = result.metrics["files"]
    assert len(files) == 77
    assert "scripts\\__init__.py" in files  # Windows paths are kept as the report writes them
    assert files["scripts\\__init__.py"]["line_rate"] is None
    assert result.notes == ()


def test_coveragepy_json_without_branch_measurement(tmp_path: Path) -> None:
    path = written(
        tmp_path,
        "coverage.json",
        '{"meta": {"format": 3, "version": "7.8.0", "branch_coverage": false},'
        ' "files": {"a.py": {"executed_lines": [1],'
        ' "summary": {"covered_lines": 1, "num_statements": 2, "percent_covered": 50.0}}},'
        ' "totals": {"covered_lines": 1, "num_statements": 2}}',
    )
    assert totals(scan(path)) == {
        "line_rate": 0.5,
        "branch_rate": None,
        "lines_covered": 1,
        "lines_valid": 2,
        "branches_covered": 0,
        "branches_valid": 0,
    }


# --- Clover --------------------------------------------------------------------------------------


def test_clover_istanbul_cut_down_notes_the_totals() -> None:
    result = scan(COVERAGE / "clover-istanbul-unleash.xml")
    assert (result.format, result.scanner_version) == ("clover", "3.2.0")
    files = result.metrics["files"]
    assert list(files) == [
        "/home/jaanus/Git/unleash/src/lib/create-config.ts",
        "/home/jaanus/Git/unleash/src/lib/default-custom-auth-deny-all.ts",
    ]
    # each file's own <metrics>: statements 132/107 and 6/2, conditionals 99/66
    config = files["/home/jaanus/Git/unleash/src/lib/create-config.ts"]
    assert (config["lines_covered"], config["lines_valid"], config["branches_covered"], config["branches_valid"]) == (
        107,
        132,
        66,
        99,
    )
    assert (totals(result)["lines_covered"], totals(result)["lines_valid"]) == (109, 138)
    [note] = result.notes
    assert "summary says 82 files, 1446 lines, 634 lines covered, 401 branches, 103 branches covered" in note
    assert "add up to 2 files, 138 lines, 109 lines covered, 99 branches, 66 branches covered" in note


def test_clover_phpunit_files_without_packages() -> None:
    result = scan(COVERAGE / "clover-phpunit-phpcsutils.xml")
    assert result.scanner_version == "unknown"
    files = result.metrics["files"]
    sniff = files["/home/yu/projects/PHPCSUtils/PHPCSUtils/AbstractSniffs/AbstractArrayDeclarationSniff.php"]
    # 79 stmt lines, all covered; the 3 method lines are not lines
    assert (sniff["lines_covered"], sniff["lines_valid"], sniff["branch_rate"]) == (79, 79, None)
    # cut down to its method line only: no statement lines are left to count
    assert files["/home/yu/projects/PHPCSUtils/PHPCSUtils/BackCompat/BCFile.php"]["lines_valid"] == 0
    [note] = result.notes
    assert "summary says 37 files, 2420 lines" in note and "add up to 2 files, 79 lines" in note


def test_clover_testproject_files_are_not_counted(tmp_path: Path) -> None:
    path = written(
        tmp_path,
        "clover.xml",
        '<coverage generated="1" clover="4.5.2"><project name="p">'
        '<metrics files="1" statements="2" coveredstatements="1"/>'
        '<package name="a"><file name="A.java" path="src/a/A.java"><line num="1" count="1" type="stmt"/>'
        '<line num="2" count="0" type="stmt"/></file></package></project>'
        '<testproject name="t"><package name="a"><file name="ATest.java" path="test/a/ATest.java">'
        '<line num="1" count="1" type="stmt"/></file></package></testproject></coverage>',
    )
    result = scan(path)
    assert list(result.metrics["files"]) == ["src/a/A.java"]
    assert result.scanner_version == "4.5.2"
    assert result.notes == ()


# --- Go ------------------------------------------------------------------------------------------


def test_go_coverprofile_chi() -> None:
    result = scan(COVERAGE / "go-coverprofile-chi-mode-set.out")
    assert (result.format, result.scanner_version) == ("go-coverprofile", "unknown")
    files = result.metrics["files"]
    # 833 blocks in 31 files (the corpus notes say 32; the profile has 31 distinct file names)
    assert len(files) == 31
    assert all(p.startswith("github.com/go-chi/chi/v5/") for p in files)
    assert totals(result) == {
        "line_rate": round(969 / 1272, 6),  # statements, as `go tool cover -func` counts them
        "branch_rate": None,
        "lines_covered": 969,
        "lines_valid": 1272,
        "branches_covered": 0,
        "branches_valid": 0,
    }
    assert files["github.com/go-chi/chi/v5/chi.go"]["line_rate"] == 1.0


def test_go_repeated_blocks_merge_by_their_best_count(tmp_path: Path) -> None:
    # `go test -coverpkg=./...` lists a block once per test binary, and repeats the mode line
    path = written(
        tmp_path,
        "cover.out",
        "mode: count\nexample.com/m/a.go:3.20,5.2 2 0\nexample.com/m/a.go:5.2,7.3 1 0\n"
        "mode: count\nexample.com/m/a.go:3.20,5.2 2 7\nexample.com/m/b.go:1.1,2.2 4 1\n",
    )
    result = scan(path)
    assert result.metrics["files"]["example.com/m/a.go"]["lines_valid"] == 3
    assert (totals(result)["lines_covered"], totals(result)["lines_valid"]) == (6, 7)


# --- merging several reports ---------------------------------------------------------------------


def test_merge_metrics_adds_reports_up() -> None:
    backend = scan(COVERAGE / "cobertura-coveragepy-6.3.2-multi-package.xml").metrics
    frontend = scan(COVERAGE / "lcov-istanbul-typescript.info").metrics
    merged = CoverageScanner().merge_metrics([backend, frontend])
    assert list(merged) == TOTAL_KEYS
    assert {k: v for k, v in merged.items() if k != "files"} == {
        "line_rate": round((489 + 16) / (1530 + 16), 6),
        "branch_rate": 1.0,
        "lines_covered": 505,
        "lines_valid": 1546,
        "branches_covered": 11,
        "branches_valid": 11,
    }
    assert len(merged["files"]) == 48
    assert merged["files"]["src/calculator.ts"] == frontend["files"]["src/calculator.ts"]
    assert CoverageScanner().merge_metrics([backend]) == backend


def test_merge_metrics_refuses_a_file_in_two_reports() -> None:
    metrics = scan(COVERAGE / "lcov-istanbul-typescript.info").metrics
    with pytest.raises(UsageError, match=r"src/calculator\.ts"):
        CoverageScanner().merge_metrics([metrics, metrics])


# --- bad input -----------------------------------------------------------------------------------

BAD_REPORTS = {
    "cobertura-empty-root.xml": "no <class> elements: the report lists no files",
    "cobertura-truncated.xml": "malformed XML: unclosed token: line 13",
    "cobertura-hits-not-a-number.xml": "hits of line 2 in app/main.py is not a number: 'many'",
    "cobertura-billion-laughs.xml": "refused hostile XML (EntitiesForbidden)",
    "cobertura-xxe-passwd.xml": "refused hostile XML (EntitiesForbidden)",
    "jacoco-counter-not-a-number.xml": "missed of the report's LINE counter is not a number: 'lots'",
    "lcov-no-sf.info": "line 2: DA: outside a record (no SF: line before it)",
    "lcov-truncated.info": "the record for src/a.js (line 2) has no end_of_record: is the file truncated?",
    "lcov-da-not-a-number.info": "line 3: DA line number is not a number: 'one'",
    "lcov-line-out-of-range.info": "line 2: DA line number is out of range",
    "go-malformed-block.out": "line 3: not a coverage block",
    "coveragepy-no-files.json": "missing required field `files`",
}


def test_every_bad_input_is_tested() -> None:
    assert {p.name for p in BAD.iterdir()} == set(BAD_REPORTS)


@pytest.mark.parametrize(("name", "problem"), BAD_REPORTS.items())
def test_bad_input_is_an_error_naming_the_problem(name: str, problem: str) -> None:
    with pytest.raises(ReportError) as caught:
        scan(BAD / name)
    assert caught.value.path == str(BAD / name)
    assert problem in caught.value.problem
    assert "\n" not in caught.value.diagnostics()


def test_hostile_xml_is_refused_before_expanding_or_reading_anything() -> None:
    # Expanded, this document would be 10^9 "lol"s: getting an error at all proves it was refused
    # at the DOCTYPE. The external entity's target must never reach the message.
    with pytest.raises(ReportError, match="name='lol'"):
        scan(BAD / "cobertura-billion-laughs.xml")
    with pytest.raises(ReportError) as caught:
        scan(BAD / "cobertura-xxe-passwd.xml")
    assert "root:" not in caught.value.problem


@pytest.mark.parametrize("name", FORMATS)
def test_every_report_cut_in_half_is_an_error(name: str, tmp_path: Path) -> None:
    data = (COVERAGE / name).read_bytes()
    half = written(tmp_path, name, "")
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReportError):
        scan(half)


def test_a_format_the_scanner_does_not_know_is_an_error() -> None:
    report = Report.open(COVERAGE / "lcov-istanbul-typescript.info")
    with pytest.raises(ReportError, match="unknown coverage format 'gcov'"):
        CoverageScanner().scan(report, "gcov")


# --- through the command line ----------------------------------------------------------------------


def test_cli_scan_prints_coverage_metrics(gate: Callable[..., Run], validate_input: Callable[[Any], None]) -> None:
    path = COVERAGE / "cobertura-coveragepy-6.3.2-multi-package.xml"
    run = gate("scan", "--report", f"coverage={path}", "--format", "json")
    assert run.code == 0, run.err
    doc = run.json()
    validate_input(doc)
    assert doc["findings"] == []
    coverage = doc["metrics"]["coverage"]
    assert (coverage["line_rate"], coverage["branch_rate"], len(coverage["files"])) == (0.319608, None, 47)
    [scanner] = doc["scanners"]
    assert {k: scanner[k] for k in ("name", "version", "format", "report", "findings")} == {
        "name": "coverage",
        "version": "6.3.2",
        "format": "cobertura",
        "report": str(path),
        "findings": 0,
    }


@pytest.mark.parametrize(("name", "fmt"), FORMATS.items())
def test_cli_auto_detects_every_report(
    gate: Callable[..., Run], validate_input: Callable[[Any], None], name: str, fmt: str
) -> None:
    run = gate("scan", "--report", f"auto={COVERAGE / name}", "--format", "json")
    assert run.code == 0, run.err
    doc = run.json()
    validate_input(doc)
    [scanner] = doc["scanners"]
    assert (scanner["name"], scanner["format"]) == ("coverage", fmt)
    assert doc["metrics"]["coverage"] == scan(COVERAGE / name).metrics


def test_cli_notes_go_into_the_document_and_to_stderr(gate: Callable[..., Run]) -> None:
    run = gate("scan", "--report", f"coverage={COVERAGE / 'clover-istanbul-unleash.xml'}", "--format", "json")
    assert run.code == 0
    [note] = run.json()["scanners"][0]["notes"]
    assert "82 files" in note
    assert "82 files" in run.err


def test_cli_backend_and_frontend_reports_add_up(gate: Callable[..., Run]) -> None:
    run = gate(
        "scan",
        "--report", f"coverage={COVERAGE / 'cobertura-coveragepy-6.3.2-multi-package.xml'}",
        "--report", f"coverage={COVERAGE / 'lcov-istanbul-typescript.info'}",
        "--format", "json",
    )  # fmt: skip
    assert run.code == 0, run.err
    doc = run.json()
    assert [s["format"] for s in doc["scanners"]] == ["cobertura", "lcov"]
    coverage = doc["metrics"]["coverage"]
    assert (coverage["lines_covered"], coverage["lines_valid"], len(coverage["files"])) == (505, 1546, 48)


def one_error_line(run: Run) -> str:
    assert run.code == 2, run
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert "Traceback" not in run.err
    return lines[0]


@pytest.mark.parametrize(("name", "problem"), BAD_REPORTS.items())
def test_cli_bad_report_is_one_error_line(gate: Callable[..., Run], name: str, problem: str) -> None:
    path = BAD / name
    line = one_error_line(gate("scan", "--report", f"coverage={path}", "--format", "json"))
    assert line.startswith(f"gate: error: {path}: ")
    assert problem in line


def test_cli_the_same_report_twice_is_refused(gate: Callable[..., Run]) -> None:
    path = COVERAGE / "lcov-istanbul-typescript.info"
    line = one_error_line(gate("scan", "--report", f"coverage={path}", "--report", f"auto={path}", "--format", "json"))
    assert "src/calculator.ts" in line


def test_cli_a_trivy_report_is_not_coverage(gate: Callable[..., Run], tmp_path: Path) -> None:
    path = written(tmp_path, "coverage.json", '{"SchemaVersion": 2, "ArtifactName": "x", "Results": []}')
    line = one_error_line(gate("scan", "--report", f"coverage={path}", "--format", "json"))
    assert f"{path}: not a coverage report" in line
