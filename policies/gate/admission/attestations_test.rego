package gate.admission.attestations_test

import rego.v1

import data.gate.admission.attestations
import data.gate.admission.decisions
import data.gate.lib.admission_fixtures_test as fx

rules(denies) := sort([r.rule | some r in denies])

passed := {
	"passed": true, "reason": "PASSED", "error": false, "decision_id": fx.decision.decision_id,
	"key_id": "0123456789abcdef", "time_verified": "2027-01-12T00:00:00.000000Z",
	"policy_digest": fx.decision.policy_digest, "attestation": "registry.example.com/shop/cart@sha256:0101",
}

# One pinned image with no log decisions and this VSA verdict, under this evidence, in prod.
attested(evidence, vsa) := object.union(fx.review("prod", [object.union(fx.pinned([]), {"vsa": vsa})]), {"gate": {"evidence": evidence}})

test_a_passed_vsa_admits_without_any_decision if {
	doc := attested("vsa", passed)
	count(attestations.deny) == 0 with input as doc
	count(decisions.deny) == 0 with input as doc
}

test_under_both_a_passed_vsa_without_a_decision_is_denied_by_the_log_rules if {
	doc := attested("both", passed)
	count(attestations.deny) == 0 with input as doc
	rules(decisions.deny) == ["admission.decisions.missing"] with input as doc
}

test_a_vsa_that_did_not_pass_is_denied_with_its_reason if {
	reason := "newest VSA for prod is FAILED (decision d-9)"
	doc := attested("vsa", object.union(passed, {"passed": false, "reason": reason}))
	denies := attestations.deny with input as doc
	rules(denies) == ["admission.vsa.not_passed"]
	some r in denies
	r.msg == sprintf("container %s: %s", [fx.container, reason])
}

test_a_vsa_that_could_not_be_checked_is_denied_as_unavailable if {
	doc := attested("both", object.union(passed, {"passed": false, "error": true, "reason": "timed out"}))
	rules(attestations.deny) == ["admission.vsa.unavailable"] with input as doc
}

test_a_pass_flagged_as_an_error_is_still_denied if {
	doc := attested("vsa", object.union(passed, {"error": true}))
	rules(attestations.deny) == ["admission.vsa.unavailable"] with input as doc
}

test_a_passed_field_that_is_not_true_does_not_pass if {
	doc := attested("vsa", object.union(passed, {"passed": "true", "reason": 7}))
	denies := attestations.deny with input as doc
	rules(denies) == ["admission.vsa.not_passed"]
	some r in denies
	endswith(r.msg, "its VSA did not pass")
}

test_no_verdict_for_a_pinned_image_is_denied if {
	doc := object.union(fx.review("prod", [fx.pinned([])]), {"gate": {"evidence": "vsa"}})
	rules(attestations.deny) == ["admission.vsa.missing"] with input as doc
	doc2 := attested("vsa", "PASSED")
	rules(attestations.deny) == ["admission.vsa.missing"] with input as doc2
}

test_under_log_evidence_the_vsa_is_not_required if {
	doc := fx.with_decision({})
	count(attestations.deny) == 0 with input as doc
	doc2 := attested("log", object.union(passed, {"passed": false}))
	count(attestations.deny) == 0 with input as doc2
}

test_an_unpinned_image_is_left_to_the_images_rule if {
	tagged := object.union(fx.pinned([]), {"pinned": false, "image": "nginx"})
	doc := object.union(fx.review("prod", [tagged]), {"gate": {"evidence": "vsa"}})
	count(attestations.deny) == 0 with input as doc
}

test_a_verdict_without_passed_or_error_does_not_pass if {
	doc := attested("vsa", {"reason": "half a verdict"})
	denies := attestations.deny with input as doc
	rules(denies) == ["admission.vsa.not_passed"]
}
