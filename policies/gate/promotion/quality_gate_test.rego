package gate.promotion.quality_gate_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.quality_gate

conditions := [
	{"metric": "new_coverage", "status": "ERROR", "comparator": "LT", "error_threshold": "85", "actual_value": "82.5"},
	{"metric": "new_blocker_violations", "status": "ERROR", "comparator": "GT", "error_threshold": "0", "actual_value": "14"},
	{"metric": "new_sqale_debt_ratio", "status": "OK", "comparator": "GT", "error_threshold": "5", "actual_value": "0.65"},
	{"metric": "open_issues", "status": "ERROR", "comparator": "GT", "error_threshold": null, "actual_value": "17"},
]

findings := [
	fx.quality_gate_finding("q1", "new_coverage"),
	fx.quality_gate_finding("q2", "new_blocker_violations"),
	fx.quality_gate_finding("q3", "open_issues"),
]

with_gate(env, status, conds) := object.union(fx.with_findings(env, findings), {
	"metrics": {"sonarqube": {"quality_gate": {"status": status, "conditions": conds}}},
	"scanners": [fx.scanner("trivy"), fx.scanner("coverage"), fx.scanner("sonarqube")],
})

test_failed_gate_is_denied_naming_the_failed_conditions if {
	denies := quality_gate.deny with input as with_gate("prod", "ERROR", conditions)
	count(denies) == 1
	some r in denies
	r.rule == "quality_gate.status"
	r.severity == "high"
	r.msg == concat("", [
		"SonarQube quality gate is ERROR: new_coverage is 82.5 (must not be below 85); ",
		"new_blocker_violations is 14 (must not be above 0); open_issues is 17",
	])
	r.finding_ids == ["q1", "q2", "q3"]
}

test_failed_gate_is_denied_outside_prod_too if {
	count(quality_gate.deny) == 1 with input as with_gate("dev", "ERROR", conditions)
}

test_passed_gate_is_allowed if {
	ok := [object.union(c, {"status": "OK"}) | some c in conditions]
	doc := with_gate("prod", "OK", ok)
	count(quality_gate.deny) == 0 with input as doc
	count(quality_gate.warn) == 0 with input as doc
}

test_no_sonarqube_report_is_not_checked if {
	count(quality_gate.deny) == 0 with input as fx.clean
}

test_gate_without_status_ok_or_conditions_fails_closed if {
	some r in quality_gate.deny with input as with_gate("prod", "NONE", [])
	r.msg == "SonarQube quality gate is NONE and names no failed condition"
	r.finding_ids == []
}

test_legacy_warn_status_fails if {
	warned := [{"metric": "new_bugs", "status": "WARN", "comparator": "GT", "warning_threshold": "0", "actual_value": "2"}]
	some r in quality_gate.deny with input as with_gate("prod", "WARN", warned)
	r.msg == "SonarQube quality gate is WARN: new_bugs is 2"
}

test_waived_condition_is_left_out if {
	waivers := [fx.waiver("W-5", "new_coverage", "2027-04-01T00:00:00Z", {})]
	some r in quality_gate.deny with input as with_gate("prod", "ERROR", conditions) with data.waivers as waivers
	msg := r.msg
	not contains(msg, "new_coverage")
	r.finding_ids == ["q2", "q3"]
}

test_gate_passes_when_every_failed_condition_is_waived if {
	waivers := [
		fx.waiver("W-5", "new_coverage", "2027-04-01T00:00:00Z", {}),
		fx.waiver("W-6", "new_blocker_violations", "2027-04-01T00:00:00Z", {}),
		fx.waiver("W-7", "open_issues", "2027-04-01T00:00:00Z", {}),
	]
	count(quality_gate.deny) == 0 with input as with_gate("prod", "ERROR", conditions) with data.waivers as waivers
}

test_setting_warn_makes_it_a_warning if {
	overrides := {"dev": {"quality_gate": "warn"}}
	doc := with_gate("dev", "ERROR", conditions)
	count(quality_gate.deny) == 0 with input as doc with data.thresholds as overrides
	some w in quality_gate.warn with input as doc with data.thresholds as overrides
	w.rule == "quality_gate.status_warning"
	w.severity == "medium"
}

test_setting_off_skips_the_check if {
	overrides := {"dev": {"quality_gate": "off"}}
	doc := with_gate("dev", "ERROR", conditions)
	count(quality_gate.deny) == 0 with input as doc with data.thresholds as overrides
	count(quality_gate.warn) == 0 with input as doc with data.thresholds as overrides
}

test_unknown_comparator_is_shown_as_is if {
	quality_gate.comparator_text("LT") == "below"
	quality_gate.comparator_text("GTE") == "GTE"
}
