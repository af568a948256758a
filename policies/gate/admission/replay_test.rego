package gate.admission.replay_test

import rego.v1

import data.gate.admission.replay
import data.gate.lib.admission_fixtures_test as fx

violation(rule, message) := {"rule": rule, "message": message, "severity": "high"}

test_a_clean_replay_passes if {
	doc := fx.with_decision({})
	count(replay.deny) == 0 with input as doc
	count(replay.warn) == 0 with input as doc
}

test_a_deny_under_todays_policy_is_denied if {
	today := {"outcome": "deny", "violations": [
		violation("vulnerabilities.severity", "CVE-2 in b"),
		violation("vulnerabilities.severity", "CVE-1 in a"),
		violation("coverage.line_rate", "line coverage 71% is under the 95% required in prod"),
	]}
	doc := fx.with_decision({"replay": today})
	denies := replay.deny with input as doc
	count(denies) == 1
	some r in denies
	r.rule == "admission.replay.denied"
	endswith(r.msg, "no longer passes today's policy: 3 violation(s) of coverage.line_rate, vulnerabilities.severity (e.g. CVE-1 in a)")
	count(replay.warn) == 0 with input as doc
}

test_a_rule_not_yet_in_force_only_warns if {
	pending := object.union(violation("signatures.required", "the image is not signed"), {"effective_on": "2027-03-01T00:00:00Z"})
	doc := fx.with_decision({"replay": {"outcome": "allow", "violations": [pending]}})
	count(replay.deny) == 0 with input as doc
	warns := replay.warn with input as doc
	count(warns) == 1
	some w in warns
	w.rule == "admission.replay.pending"
	endswith(w.msg, "will be blocked from 2027-03-01T00:00:00Z by signatures.required: the image is not signed")
}

test_a_rule_in_force_since_denies if {
	since := object.union(violation("signatures.required", "the image is not signed"), {"effective_on": "2027-01-01T00:00:00Z"})
	doc := fx.with_decision({"replay": {"outcome": "deny", "violations": [since]}})
	some r in replay.deny with input as doc
	r.rule == "admission.replay.denied"
}

test_a_replay_error_is_denied if {
	doc := fx.with_decision({"replay": {"outcome": "error", "violations": [], "error": "policy does not compile"}})
	denies := replay.deny with input as doc
	count(denies) == 1
	some r in denies
	r.rule == "admission.replay.error"
	endswith(r.msg, "could not be re-checked under today's policy: policy does not compile")
}

test_a_decision_relied_on_without_a_replay_is_denied if {
	doc := fx.with_decision({"replay": null})
	some r in replay.deny with input as doc
	r.rule == "admission.replay.error"
	endswith(r.msg, "could not be re-checked under today's policy: it was not replayed")
}

test_a_deny_decision_is_not_replayed if {
	doc := fx.with_decision({"outcome": "deny", "replay": null})
	count(replay.deny) == 0 with input as doc
}
