package gate.promotion.vulnerabilities_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.vulnerabilities

critical := fx.vulnerability("f1", "CVE-2021-44906", "critical")

high := fx.vulnerability("f2", "CVE-2022-0778", "high")

medium := fx.vulnerability("f3", "CVE-2019-1549", "medium")

unknown := fx.vulnerability("f4", "GHSA-xxxx-yyyy-zzzz", "unknown")

ids(results) := {id | some r in results; some id in r.finding_ids}

test_prod_denies_critical_and_high if {
	doc := fx.with_findings("prod", [critical, high, medium])
	denies := vulnerabilities.deny with input as doc
	ids(denies) == {"f1", "f2"}
	{r.rule | some r in denies} == {"vulnerabilities.severity"}
	{r.severity | some r in denies} == {"critical", "high"}
	count(vulnerabilities.warn) == 0 with input as doc
}

test_deny_names_cve_package_installed_and_fixed_version if {
	doc := fx.with_findings("prod", [critical])
	some r in vulnerabilities.deny with input as doc
	r.msg == "critical vulnerability CVE-2021-44906 in libssl1.1 1.1.1c-r0: fixed in 1.1.1d-r0"
	r.finding_ids == ["f1"]
	contains(r.solution, "Upgrade libssl1.1 1.1.1c-r0 to 1.1.1d-r0 or later")
}

test_deny_says_when_there_is_no_fix if {
	doc := fx.with_findings("prod", [fx.unfixed("f5", "CVE-2023-52425", "high")])
	some r in vulnerabilities.deny with input as doc
	r.msg == "high vulnerability CVE-2023-52425 in libexpat 2.5.0-r2: no fixed version available"
	startswith(r.solution, "No fixed version of libexpat 2.5.0-r2 yet")
}

test_prod_allows_medium_low_and_info if {
	findings := [
		medium,
		fx.vulnerability("f6", "CVE-1", "low"),
		fx.vulnerability("f7", "CVE-2", "info"),
	]
	doc := fx.with_findings("prod", findings)
	count(vulnerabilities.deny) == 0 with input as doc
	count(vulnerabilities.warn) == 0 with input as doc
}

test_prod_denies_unknown_severity_as_high if {
	doc := fx.with_findings("prod", [unknown])
	some r in vulnerabilities.deny with input as doc
	r.severity == "high"
	r.msg == "unknown-severity vulnerability GHSA-xxxx-yyyy-zzzz in libssl1.1 1.1.1c-r0: fixed in 1.1.1d-r0"
}

test_staging_denies_critical_and_warns_on_high_and_unknown if {
	doc := fx.with_findings("staging", [critical, high, unknown, medium])
	ids(vulnerabilities.deny) == {"f1"} with input as doc
	warnings := vulnerabilities.warn with input as doc
	ids(warnings) == {"f2", "f4"}
	{r.rule | some r in warnings} == {"vulnerabilities.severity_warning"}
}

test_environment_not_named_uses_default if {
	doc := fx.with_findings("dev", [critical, high])
	ids(vulnerabilities.deny) == {"f1"} with input as doc
	ids(vulnerabilities.warn) == {"f2"} with input as doc
}

test_other_kinds_are_not_vulnerabilities if {
	doc := fx.with_findings("prod", [fx.secret("s1", "aws-access-key-id", "critical")])
	count(vulnerabilities.deny) == 0 with input as doc
}

test_waived_cve_is_not_denied if {
	doc := fx.with_findings("prod", [critical, high])
	waivers := [fx.waiver("W-1", "CVE-2021-44906", "2027-06-01T00:00:00Z", {})]
	ids(vulnerabilities.deny) == {"f2"} with input as doc with data.waivers as waivers
}

test_waiver_for_another_image_does_not_waive if {
	doc := fx.with_findings("prod", [critical])
	waivers := [fx.waiver("W-1", "CVE-2021-44906", "2027-06-01T00:00:00Z", {"image": "registry.example.com/other"})]
	ids(vulnerabilities.deny) == {"f1"} with input as doc with data.waivers as waivers
}

test_expired_waiver_does_not_waive if {
	doc := fx.with_findings("prod", [critical])
	waivers := [fx.waiver("W-1", "CVE-2021-44906", "2027-01-01T00:00:00Z", {})]
	ids(vulnerabilities.deny) == {"f1"} with input as doc with data.waivers as waivers
}

test_override_makes_medium_block_in_prod if {
	doc := fx.with_findings("prod", [medium])
	overrides := {"prod": {"vulnerabilities": {"deny": ["critical", "high", "medium", "unknown"]}}}
	ids(vulnerabilities.deny) == {"f3"} with input as doc with data.thresholds as overrides
}

test_override_makes_high_block_in_staging if {
	doc := fx.with_findings("staging", [high])
	overrides := {"staging": {"vulnerabilities": {"deny": ["critical", "high"]}}}
	ids(vulnerabilities.deny) == {"f2"} with input as doc with data.thresholds as overrides
	count(vulnerabilities.warn) == 0 with input as doc with data.thresholds as overrides
}

test_finding_without_package_is_still_denied if {
	bare := {"id": "f9", "scanner": "grype", "kind": "vulnerability", "rule": "CVE-2024-1", "severity": "critical", "title": "x"}
	doc := fx.with_findings("prod", [bare])
	some r in vulnerabilities.deny with input as doc
	r.msg == "critical vulnerability CVE-2024-1 in an unnamed package: no fixed version available"
}

test_deny_names_where_a_language_package_was_found if {
	npm := object.union(fx.vulnerability("f8", "CVE-2021-44906", "critical"), {"package": {
		"name": "minimist", "version": "1.2.5", "fixed_version": "1.2.6, 0.2.4",
		"path": "juice-shop/node_modules/minimist/package.json",
	}})
	some r in vulnerabilities.deny with input as fx.with_findings("prod", [npm])
	r.msg == "critical vulnerability CVE-2021-44906 in minimist 1.2.5 (juice-shop/node_modules/minimist/package.json): fixed in 1.2.6, 0.2.4"
}

# --- unfixed: warn | deny ----------------------------------------------------------------------

unfixed_high := fx.unfixed("f5", "CVE-2023-52425", "high")

test_unfixed_denies_by_default if {
	doc := fx.with_findings("prod", [unfixed_high])
	ids(vulnerabilities.deny) == {"f5"} with input as doc
	count(vulnerabilities.warn) == 0 with input as doc
}

test_unfixed_warn_turns_the_deny_into_a_warning_and_says_so if {
	doc := fx.with_findings("prod", [unfixed_high, critical])
	denies := vulnerabilities.deny with input as doc with data.thresholds as {"prod": {"unfixed": "warn"}}
	warns := vulnerabilities.warn with input as doc with data.thresholds as {"prod": {"unfixed": "warn"}}
	ids(denies) == {"f1"}
	some r in warns
	r.rule == "vulnerabilities.unfixed_warning"
	r.finding_ids == ["f5"]
	r.msg == "high vulnerability CVE-2023-52425 in libexpat 2.5.0-r2: no fixed version available (warns instead of denying: setting unfixed is warn in prod)"
}

test_unfixed_warn_leaves_non_blocking_severities_alone if {
	doc := fx.with_findings("prod", [fx.unfixed("f8", "CVE-3", "medium")])
	count(vulnerabilities.warn) == 0 with input as doc with data.thresholds as {"prod": {"unfixed": "warn"}}
}

# --- max_days_fixable --------------------------------------------------------------------------

fixable_since(seen) := object.union(fx.with_findings("prod", [critical, medium, unfixed_high]), {"first_seen_fixable": {"f1": seen, "f3": seen}})

too_long(denies) := {r | some r in denies; r.rule == "vulnerabilities.fixable_too_long"}

limit(days) := {"prod": {"max_days_fixable": days}}

test_max_days_fixable_denies_a_fix_older_than_the_limit_naming_the_days if {
	denies := vulnerabilities.deny with input as fixable_since("2026-12-01T00:00:00Z") with data.thresholds as limit(30)
	results := too_long(denies)
	ids(results) == {"f1", "f3"}
	some r in results
	r.finding_ids == ["f3"]
	r.severity == "medium"
	r.msg == "medium vulnerability CVE-2019-1549 in libssl1.1 1.1.1c-r0: fixed in 1.1.1d-r0, available for 52 days (more than max_days_fixable 30 in prod)"
}

test_max_days_fixable_allows_a_fix_within_the_limit if {
	denies := vulnerabilities.deny with input as fixable_since("2027-01-01T00:00:00Z") with data.thresholds as limit(30)
	count(too_long(denies)) == 0
}

test_max_days_fixable_counts_a_finding_never_seen_as_new if {
	denies := vulnerabilities.deny with input as fx.with_findings("prod", [medium]) with data.thresholds as limit(0)
	count(too_long(denies)) == 0
}

test_max_days_fixable_is_off_by_default if {
	denies := vulnerabilities.deny with input as fixable_since("2000-01-01T00:00:00Z")
	count(too_long(denies)) == 0
}

test_max_days_fixable_respects_waivers if {
	doc := object.union(fixable_since("2000-01-01T00:00:00Z"), {"findings": [medium]})
	denies := vulnerabilities.deny with input as doc with data.thresholds as limit(30)
	count(too_long(denies)) == 1
	waivers := [fx.waiver("W-1", "CVE-2019-1549", "2027-06-01T00:00:00Z", {})]
	waived := vulnerabilities.deny with input as doc with data.thresholds as limit(30) with data.waivers as waivers
	count(too_long(waived)) == 0
}
