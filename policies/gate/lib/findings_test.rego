package gate.lib.findings_test

import rego.v1

import data.gate.lib.findings
import data.gate.lib.fixtures_test as fx

test_result_severity_counts_unknown_as_high if {
	findings.result_severity("critical") == "critical"
	findings.result_severity("info") == "info"
	findings.result_severity("unknown") == "high"
}

test_blocking_and_warning_follow_the_environment if {
	list := [fx.vulnerability("c", "CVE-1", "critical"), fx.vulnerability("h", "CVE-2", "high"), fx.secret("s", "x", "high")]
	{f.id | some f in findings.blocking("vulnerability", "vulnerabilities")} == {"c", "h"} with input as fx.with_findings("prod", list)
	{f.id | some f in findings.blocking("vulnerability", "vulnerabilities")} == {"c"} with input as fx.with_findings("staging", list)
	{f.id | some f in findings.warning("vulnerability", "vulnerabilities")} == {"h"} with input as fx.with_findings("staging", list)
}

test_positions_index_findings_by_kind_and_skip_those_without_one if {
	list := [fx.vulnerability("v1", "CVE-1", "high"), fx.secret("s", "x", "high"), {"id": "no-kind"}, fx.vulnerability("v2", "CVE-2", "low")]
	findings.positions == {"vulnerability": {0, 3}, "secret": {1}} with input as fx.with_findings("prod", list)
	{f.id | some f in findings.blocking("secret", "secrets")} == {"s"} with input as fx.with_findings("prod", list)
	count(findings.blocking("license", "licenses")) == 0 with input as fx.with_findings("prod", list)
}

test_a_severity_both_denied_and_warned_only_denies if {
	overrides := {"prod": {"vulnerabilities": {"warn": ["critical", "medium"]}}}
	list := [fx.vulnerability("c", "CVE-1", "critical"), fx.vulnerability("m", "CVE-2", "medium")]
	doc := fx.with_findings("prod", list)
	{f.id | some f in findings.warning("vulnerability", "vulnerabilities")} == {"m"} with input as doc with data.thresholds as overrides
}

test_waived_findings_are_neither_blocking_nor_warning if {
	doc := fx.with_findings("staging", [fx.vulnerability("h", "CVE-2", "high")])
	ws := [fx.waiver("W-1", "CVE-2", "2027-06-01T00:00:00Z", {})]
	count(findings.warning("vulnerability", "vulnerabilities")) == 0 with input as doc with data.waivers as ws
}

test_package_text if {
	findings.package_text(fx.vulnerability("v", "CVE-1", "high")) == "libssl1.1 1.1.1c-r0"
	findings.package_text({"package": {"name": "bash"}}) == "bash"
	findings.package_text({"package": {"name": "bash", "version": ""}}) == "bash"
	findings.package_text({"package": {"version": "1.0"}}) == "an unnamed package"
	findings.package_text({}) == "an unnamed package"
}

test_location_text if {
	findings.location_text({"location": {"path": "deploy.sh", "start_line": 3}}) == "deploy.sh line 3"
	findings.location_text({"location": {"path": "Dockerfile"}}) == "Dockerfile"
	findings.location_text({"location": {"path": "Dockerfile", "start_line": 0}}) == "Dockerfile"
	findings.location_text({"location": {"path": ""}}) == "an unknown location"
	findings.location_text({}) == "an unknown location"
}

test_severity_text if {
	findings.severity_text("unknown") == "unknown-severity"
	findings.severity_text("high") == "high"
}
