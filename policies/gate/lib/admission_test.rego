package gate.lib.admission_test

import rego.v1

import data.gate.lib.admission
import data.gate.lib.admission_fixtures_test as fx

test_prod_accepts_decisions_up_to_720h if {
	doc := fx.with_decision({})
	admission.max_age == "720h" with input as doc
	admission.max_age_ns == ((720 * 3600) * 1000000000) with input as doc
}

test_other_environments_use_the_default_2160h if {
	doc := fx.review("staging", [])
	admission.max_age == "2160h" with input as doc
}

test_data_overrides_the_environment_then_the_default if {
	prod := fx.review("prod", [])
	qa := fx.review("qa", [])
	both := {"max_decision_age": {"prod": "48h", "default": "100h"}}
	admission.max_age == "48h" with input as prod with data.admission as both
	admission.max_age == "100h" with input as qa with data.admission as both
	default_only := {"max_decision_age": {"default": "100h"}}
	admission.max_age == "720h" with input as prod with data.admission as default_only
}

test_pinned_needs_the_flag_and_a_sha256_digest if {
	good := fx.pinned([])
	admission.pinned(good)
	flag_only := object.union(good, {"digest": "sha256:short"})
	not admission.pinned(flag_only)
	tag := object.union(good, {"pinned": false})
	not admission.pinned(tag)
	no_digest := object.remove(good, ["digest"])
	not admission.pinned(no_digest)
}

test_newest_is_the_first_decision_and_relied_on_only_when_allow if {
	allow := fx.decision
	deny := fx.decision_with({"outcome": "deny", "decision_id": "d-deny"})
	admission.newest(fx.pinned([deny, allow])).decision_id == "d-deny"
	not admission.relied_on(fx.pinned([deny, allow]))
	admission.relied_on(fx.pinned([allow, deny])) == allow
	not admission.newest(fx.pinned([]))
}

test_signature_problems_are_named if {
	admission.trusted(fx.decision)
	given := fx.decision_with({"signature_valid": false, "signature_problem": "edited: hash mismatch"})
	admission.signature_problem(given) == "edited: hash mismatch"
	unsigned := fx.decision_with({"signed": false, "trusted_key": false})
	not admission.trusted(unsigned)
	admission.signature_problem(unsigned) == "unsigned: the record has no signature"
	untrusted := fx.decision_with({"trusted_key": false})
	admission.signature_problem(untrusted) == "signed by key 0123456789abcdef, which is not a trusted key"
	bad := fx.decision_with({"signature_valid": false})
	admission.signature_problem(bad) == "bad signature: it does not match the record"
}

test_fresh_and_age_text if {
	doc := fx.with_decision({})
	young := fx.decision
	old := fx.decision_with({"age_seconds": 3897000})
	unknown := object.remove(fx.decision, ["age_seconds"])
	admission.fresh(young) with input as doc
	not admission.fresh(old) with input as doc
	not admission.fresh(unknown) with input as doc
	admission.age_text(old) == "1082.5h old"
	admission.age_text(unknown) == "of unknown age"
}

test_waiver_expired_by_flag_or_by_time if {
	doc := fx.with_decision({})
	flagged := {"id": "W-1", "rule": "CVE-1", "expires": "2030-01-01T00:00:00Z", "expired": true}
	by_time := {"id": "W-2", "rule": "CVE-2", "expires": "2027-01-21T00:00:00Z", "expired": false}
	active := {"id": "W-3", "rule": "CVE-3", "expires": "2027-02-21T00:00:00Z", "expired": false}
	admission.expired(flagged) with input as doc
	admission.expired(by_time) with input as doc
	not admission.expired(active) with input as doc
}

test_pending_only_before_effective_on if {
	doc := fx.with_decision({})
	later := {"rule": "r", "message": "m", "effective_on": "2027-06-01T00:00:00Z"}
	earlier := {"rule": "r", "message": "m", "effective_on": "2026-06-01T00:00:00Z"}
	no_date := {"rule": "r", "message": "m"}
	admission.pending(later) with input as doc
	not admission.pending(earlier) with input as doc
	not admission.pending(no_date) with input as doc
}

test_a_well_formed_input_has_no_problems if {
	doc := fx.with_decision({})
	count(admission.problems) == 0 with input as doc
}

test_missing_input_fields_are_problems if {
	doc := {"request": fx.request, "gate": {}}
	problems := admission.problems with input as doc
	some p1 in problems
	startswith(p1, "input.gate.environment is missing")
	some p2 in problems
	startswith(p2, "input.gate.now is missing")
	some p3 in problems
	startswith(p3, "input.gate.images is missing")
}

test_malformed_settings_are_problems if {
	doc := fx.review("prod", [])
	typo := {"max_decision_ages": {"prod": "1h"}}
	some p1 in admission.problems with input as doc with data.admission as typo
	p1 == "unknown admission setting max_decision_ages (known: max_decision_age)"
	days := {"max_decision_age": {"prod": "30d"}}
	some p2 in admission.problems with input as doc with data.admission as days
	p2 == "setting admission.max_decision_age for environment prod must be a Go duration such as \"720h\", not 30d"
	some p3 in admission.problems with input as doc with data.admission as "720h"
	p3 == "data.admission must be a mapping of admission settings, not a string"
}

test_an_undeclared_environment_is_a_problem if {
	doc := fx.review("prd", [])
	problems := admission.problems with input as doc
	problems == {"environment \"prd\" is not declared in the policy data; declared: dev, prod, staging"}
	declared := fx.review("staging", [])
	count(admission.problems) == 0 with input as declared
}

test_malformed_declarations_are_admission_problems if {
	doc := fx.review("prod", [])
	problems := admission.problems with input as doc with data.environments as {"qa": {"inherits": "nowhere"}}
	"environment qa inherits nowhere, which is not a declared environment" in problems
}
