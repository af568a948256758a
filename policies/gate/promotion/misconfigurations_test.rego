package gate.promotion.misconfigurations_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.misconfigurations

root_user := fx.misconfiguration("m1", "DS-0002", "high")

ids(results) := {id | some r in results; some id in r.finding_ids}

test_high_misconfiguration_is_denied_with_trivy_resolution if {
	some r in misconfigurations.deny with input as fx.with_findings("prod", [root_user])
	r.rule == "misconfigurations.severity"
	r.severity == "high"
	r.msg == "high misconfiguration DS-0002 in Dockerfile: Image user should not be 'root'"
	r.solution == "Add 'USER <non root user name>' line to the Dockerfile"
}

test_critical_and_high_are_denied_outside_prod_too if {
	findings := [root_user, fx.misconfiguration("m2", "KSV-0017", "critical")]
	ids(misconfigurations.deny) == {"m1", "m2"} with input as fx.with_findings("staging", findings)
}

test_medium_and_low_are_allowed if {
	findings := [fx.misconfiguration("m3", "DS-0026", "medium"), fx.misconfiguration("m4", "DS-0013", "low")]
	doc := fx.with_findings("prod", findings)
	count(misconfigurations.deny) == 0 with input as doc
	count(misconfigurations.warn) == 0 with input as doc
}

test_solution_without_resolution_names_the_check if {
	bare := {
		"id": "m5", "scanner": "trivy", "kind": "misconfiguration", "rule": "KSV-0001",
		"severity": "critical", "title": "Process can elevate its own privileges",
		"location": {"path": "deploy/app.yaml", "start_line": 12},
	}
	some r in misconfigurations.deny with input as fx.with_findings("prod", [bare])
	r.msg == "critical misconfiguration KSV-0001 in deploy/app.yaml line 12: Process can elevate its own privileges"
	startswith(r.solution, "Fix the configuration as check KSV-0001 describes")
}

test_waiver_naming_the_check_waives_it if {
	doc := fx.with_findings("prod", [root_user])
	waivers := [fx.waiver("W-3", "DS-0002", "2027-05-01T00:00:00Z", {"image": fx.image})]
	count(misconfigurations.deny) == 0 with input as doc with data.waivers as waivers
}

test_override_warns_on_medium if {
	doc := fx.with_findings("prod", [fx.misconfiguration("m3", "DS-0026", "medium")])
	overrides := {"prod": {"misconfigurations": {"warn": ["medium"]}}}
	some w in misconfigurations.warn with input as doc with data.thresholds as overrides
	w.rule == "misconfigurations.severity_warning"
	w.severity == "medium"
}
