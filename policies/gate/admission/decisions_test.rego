package gate.admission.decisions_test

import rego.v1

import data.gate.admission.decisions
import data.gate.lib.admission_fixtures_test as fx

rules(denies) := sort([r.rule | some r in denies])

test_a_trusted_fresh_allow_passes if {
	doc := fx.with_decision({})
	count(decisions.deny) == 0 with input as doc
}

test_no_decision_means_it_never_passed_the_gate if {
	doc := fx.with_decisions([])
	denies := decisions.deny with input as doc
	rules(denies) == ["admission.decisions.missing"]
	some r in denies
	r.msg == sprintf("container %s: no gate decision for %s in prod: it never passed the gate", [fx.container, fx.image])
}

test_an_unpinned_image_is_not_looked_up if {
	tagged := object.union(fx.pinned([]), {"pinned": false, "image": "nginx"})
	doc := fx.review("prod", [tagged])
	count(decisions.deny) == 0 with input as doc
}

test_newest_deny_is_not_allowed_even_after_an_older_allow if {
	deny := fx.decision_with({"outcome": "deny", "decision_id": "d-2", "timestamp": "2027-01-20T00:00:00.000000Z"})
	doc := fx.with_decisions([deny, fx.decision])
	denies := decisions.deny with input as doc
	rules(denies) == ["admission.decisions.not_allowed"]
	some r in denies
	r.decision_id == "d-2"
	contains(r.msg, "the newest gate decision for registry.example.com/shop/cart:1.4.2@sha256:abab")
	endswith(r.msg, "in prod is deny, not allow (decision d-2 of 2027-01-20T00:00:00.000000Z)")
}

test_an_untrusted_signature_is_denied if {
	doc := fx.with_decision({"trusted_key": false, "signing_key": "fedcba9876543210"})
	denies := decisions.deny with input as doc
	rules(denies) == ["admission.decisions.signature"]
	some r in denies
	endswith(r.msg, "cannot be trusted: signed by key fedcba9876543210, which is not a trusted key")
}

test_an_edited_record_is_denied if {
	problem := "edited: its contents hash to sha256:1, not to its recorded hash sha256:2"
	doc := fx.with_decision({"signature_valid": false, "signature_problem": problem})
	some r in decisions.deny with input as doc
	r.rule == "admission.decisions.signature"
	endswith(r.msg, problem)
}

test_a_decision_older_than_max_age_is_denied if {
	doc := fx.with_decision({"age_seconds": 2592001})
	denies := decisions.deny with input as doc
	rules(denies) == ["admission.decisions.too_old"]
	some r in denies
	endswith(r.msg, "is 720h old (decided 2027-01-12T00:00:00.000000Z); prod accepts decisions at most 720h old")
	edge := fx.with_decision({"age_seconds": 2592000})
	count(decisions.deny) == 0 with input as edge
}

test_staging_accepts_older_decisions if {
	doc := fx.review("staging", [fx.pinned([fx.decision_with({"age_seconds": 2592001})])])
	count(decisions.deny) == 0 with input as doc
}

test_a_decision_of_unknown_age_is_too_old if {
	doc := fx.with_decisions([object.remove(fx.decision, ["age_seconds", "timestamp"])])
	some r in decisions.deny with input as doc
	r.rule == "admission.decisions.too_old"
	contains(r.msg, "is of unknown age (decided at an unknown time)")
}

test_an_expired_waiver_is_denied if {
	expired := {"id": "W-0042", "rule": "CVE-2022-22965", "expires": "2027-01-20T00:00:00Z", "expired": true}
	active := {"id": "W-0043", "rule": "CVE-2023-1", "expires": "2027-06-01T00:00:00Z", "expired": false}
	doc := fx.with_decision({"waivers": [expired, active]})
	denies := decisions.deny with input as doc
	rules(denies) == ["admission.decisions.waiver_expired"]
	some r in denies
	endswith(r.msg, "relied on waiver W-0042 (CVE-2022-22965), which expired on 2027-01-20T00:00:00Z")
}

test_a_bad_max_age_is_left_to_the_settings_rule if {
	doc := fx.with_decision({})
	bad := {"max_decision_age": {"prod": "30d"}}
	count(decisions.deny) == 0 with input as doc with data.admission as bad
}
