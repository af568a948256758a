package gate.promotion.licenses_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.licenses

gpl := fx.license("l1", "GPL-3.0", "high")

test_restricted_license_warns_but_does_not_deny if {
	doc := fx.with_findings("prod", [gpl])
	count(licenses.deny) == 0 with input as doc
	some w in licenses.warn with input as doc
	w.rule == "licenses.severity_warning"
	w.severity == "high"
	w.msg == "high-risk license GPL-3.0: bash is licensed GPL-3.0 (restricted)"
	w.finding_ids == ["l1"]
}

test_low_risk_licenses_are_ignored if {
	doc := fx.with_findings("staging", [fx.license("l2", "MIT", "low"), fx.license("l3", "LGPL-2.1", "medium")])
	count(licenses.warn) == 0 with input as doc
	count(licenses.deny) == 0 with input as doc
}

test_override_makes_forbidden_licenses_deny if {
	doc := fx.with_findings("prod", [fx.license("l4", "AGPL-3.0", "critical"), gpl])
	overrides := {"prod": {"licenses": {"deny": ["critical"]}}}
	some r in licenses.deny with input as doc with data.thresholds as overrides
	r.rule == "licenses.severity"
	r.finding_ids == ["l4"]
	{id | some w in licenses.warn; some id in w.finding_ids} == {"l1"} with input as doc with data.thresholds as overrides
}

test_waiver_naming_the_license_waives_it if {
	waivers := [fx.waiver("W-4", "GPL-3.0", "2027-12-31T00:00:00Z", {})]
	count(licenses.warn) == 0 with input as fx.with_findings("prod", [gpl]) with data.waivers as waivers
}
