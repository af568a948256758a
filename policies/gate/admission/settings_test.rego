package gate.admission.settings_test

import rego.v1

import data.gate.admission.settings
import data.gate.lib.admission
import data.gate.lib.admission_fixtures_test as fx

test_well_formed_input_and_settings_pass if {
	doc := fx.with_decision({})
	count(settings.deny) == 0 with input as doc
}

test_each_problem_is_a_deny if {
	doc := {"request": fx.request, "gate": {"environment": "prod", "now": "yesterday", "images": []}}
	denies := settings.deny with input as doc
	count(denies) == 1
	some r in denies
	r.rule == "admission.settings.invalid"
	startswith(r.msg, "input.gate.now is missing or not an RFC 3339 timestamp")
}

test_a_bad_max_age_is_a_deny_not_a_silent_pass if {
	doc := fx.with_decision({})
	bad := {"max_decision_age": {"prod": 720}}
	some r in settings.deny with input as doc with data.admission as bad
	r.msg == "setting admission.max_decision_age for environment prod must be a Go duration such as \"720h\", not 720"
}

test_an_unknown_evidence_is_invalid_and_requires_nothing_less if {
	doc := object.union(fx.with_decisions([]), {"gate": {"evidence": "none"}})
	some r in settings.deny with input as doc
	r.msg == "input.gate.evidence must be one of both, log, vsa, not none"
}

test_a_missing_evidence_means_the_log if {
	admission.evidence == "log" with input as fx.with_decisions([])
	admission.uses_log with input as fx.with_decisions([])
	not admission.uses_vsa with input as fx.with_decisions([])
}
