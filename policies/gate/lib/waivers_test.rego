package gate.lib.waivers_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.lib.waivers

cve := fx.vulnerability("f1", "CVE-2023-52425", "high")

doc := fx.with_findings("prod", [cve, fx.vulnerability("f2", "CVE-2022-0778", "high")])

waiver(scope) := fx.waiver("W-1", "CVE-2023-52425", "2027-06-01T00:00:00Z", scope)

# Tests bind every value to a local before a `with`: regorus can lose a rule value (or a function
# result) that is first evaluated inside a with-modified expression, which would make a `not`
# assertion pass for the wrong reason.

test_unscoped_waiver_waives_its_rule_only if {
	d := doc
	f1 := cve
	f2 := fx.vulnerability("f2", "CVE-2022-0778", "high")
	ws := [waiver({})]
	waivers.waived(f1) with input as d with data.waivers as ws
	not waivers.waived(f2) with input as d with data.waivers as ws
}

test_image_scope if {
	d := doc
	f := cve
	same := [waiver({"image": fx.image})]
	other := [waiver({"image": "registry.example.com/shop/cart-admin"})]
	waivers.waived(f) with input as d with data.waivers as same
	not waivers.waived(f) with input as d with data.waivers as other
}

test_image_scope_ignores_tag_and_digest if {
	retagged := object.union(doc, {"artifact": {
		"image": fx.image,
		"digest": "sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
		"tag": "2.0.0",
	}})
	f := cve
	ws := [waiver({"image": fx.image})]
	waivers.waived(f) with input as retagged with data.waivers as ws
}

test_image_scoped_waiver_needs_an_artifact if {
	no_artifact := object.union(doc, {"artifact": null})
	f := cve
	ws := [waiver({"image": fx.image})]
	not waivers.waived(f) with input as no_artifact with data.waivers as ws
}

test_environment_scope if {
	d := doc
	f := cve
	same := [waiver({"environment": "prod"})]
	other := [waiver({"environment": "staging"})]
	waivers.waived(f) with input as d with data.waivers as same
	not waivers.waived(f) with input as d with data.waivers as other
}

test_null_scope_fields_mean_unscoped if {
	d := doc
	f := cve
	ws := [waiver({"image": null, "environment": null})]
	waivers.waived(f) with input as d with data.waivers as ws
}

test_expiry_is_strictly_after_now if {
	d := doc
	f := cve
	at_now := fx.waiver("W-1", "CVE-2023-52425", fx.now, {})
	later := fx.waiver("W-1", "CVE-2023-52425", "2027-01-22T00:00:00.001Z", {})
	expired_now := [at_now]
	active_later := [later]
	not waivers.waived(f) with input as d with data.waivers as expired_now
	waivers.expired == {at_now} with input as d with data.waivers as expired_now
	waivers.waived(f) with input as d with data.waivers as active_later
	count(waivers.expired) == 0 with input as d with data.waivers as active_later
}

test_nothing_is_waived_without_now if {
	no_now := object.remove(doc, ["now"])
	f := cve
	ws := [waiver({})]
	not waivers.waived(f) with input as no_now with data.waivers as ws
	count(waivers.active) == 0 with input as no_now with data.waivers as ws
}

test_waiver_with_unparsable_expiry_waives_nothing if {
	d := doc
	f := cve
	ws := [fx.waiver("W-1", "CVE-2023-52425", "31.01.2027", {})]
	not waivers.waived(f) with input as d with data.waivers as ws
	count(waivers.expired) == 0 with input as d with data.waivers as ws
}

test_waivers_that_are_not_a_list_are_ignored if {
	mapping := {"W-1": waiver({})}
	waivers.declared == [] with data.waivers as mapping
	waivers.declared == []
}

test_matched_ids_keep_input_order if {
	findings := [fx.vulnerability("b", "CVE-1", "high"), fx.vulnerability("a", "CVE-1", "low"), cve]
	d := fx.with_findings("prod", findings)
	w := fx.waiver("W-1", "CVE-1", "2027-06-01T00:00:00Z", {})
	waivers.matched_ids(w) == ["b", "a"] with input as d
}

test_days_left_rounds_down if {
	d := doc
	w := fx.waiver("W-1", "CVE-1", "2027-01-31T23:59:59Z", {})
	waivers.days_left(w) == 9 with input as d
	waivers.days_left_text(w) == "in 9 days" with input as d
}
