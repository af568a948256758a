package gate.promotion.waivers_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.waivers

# now is 2027-01-22T00:00:00Z
findings := [
	fx.vulnerability("f1", "CVE-2023-52425", "high"),
	fx.vulnerability("f2", "CVE-2023-52425", "high"),
	fx.vulnerability("f3", "CVE-2022-0778", "critical"),
]

doc := fx.with_findings("prod", findings)

test_applied_lists_the_waiver_with_the_findings_it_waived if {
	w := fx.waiver("W-0042", "CVE-2023-52425", "2027-06-30T00:00:00Z", {"image": fx.image, "environment": "prod"})
	applied := waivers.applied with input as doc with data.waivers as [w]
	applied == {{
		"id": "W-0042",
		"rule": "CVE-2023-52425",
		"expires": "2027-06-30T00:00:00Z",
		"approved_by": "secops@example.com",
		"reason": "not reachable: the vulnerable function is never called",
		"finding_ids": ["f1", "f2"],
		"scope": {"image": fx.image, "environment": "prod"},
	}}
	count(waivers.stale) == 0 with input as doc with data.waivers as [w]
	count(waivers.warn) == 0 with input as doc with data.waivers as [w]
}

test_waiver_matching_nothing_is_stale if {
	w := fx.waiver("W-9", "CVE-1999-0001", "2027-06-30T00:00:00Z", {})
	waivers.stale == {"W-9"} with input as doc with data.waivers as [w]
	count(waivers.applied) == 0 with input as doc with data.waivers as [w]
}

test_waiver_out_of_scope_is_neither_applied_nor_stale if {
	ws := [
		fx.waiver("W-img", "CVE-2023-52425", "2027-06-30T00:00:00Z", {"image": "registry.example.com/other"}),
		fx.waiver("W-env", "CVE-2023-52425", "2027-06-30T00:00:00Z", {"environment": "staging"}),
	]
	count(waivers.applied) == 0 with input as doc with data.waivers as ws
	count(waivers.stale) == 0 with input as doc with data.waivers as ws
}

test_waiver_with_image_does_not_apply_without_an_artifact if {
	w := fx.waiver("W-img", "CVE-2023-52425", "2027-06-30T00:00:00Z", {"image": fx.image})
	no_artifact := object.union(doc, {"artifact": null})
	count(waivers.applied) == 0 with input as no_artifact with data.waivers as [w]
}

test_waiver_expiring_within_14_days_warns if {
	w := fx.waiver("W-0042", "CVE-2023-52425", "2027-01-31T00:00:00Z", {})
	warnings := waivers.warn with input as doc with data.waivers as [w]
	count(warnings) == 1
	some r in warnings
	r.rule == "waivers.expiring"
	r.severity == "low"
	r.msg == "waiver W-0042 for CVE-2023-52425 expires 2027-01-31T00:00:00Z (in 9 days)"
	r.finding_ids == ["f1", "f2"]
	count(waivers.applied) == 1 with input as doc with data.waivers as [w]
}

test_expiry_warning_boundary_is_14_days if {
	at_edge := fx.waiver("W-1", "CVE-2023-52425", "2027-02-05T00:00:00Z", {})
	past_edge := fx.waiver("W-1", "CVE-2023-52425", "2027-02-05T00:00:01Z", {})
	some r in waivers.warn with input as doc with data.waivers as [at_edge]
	r.msg == "waiver W-1 for CVE-2023-52425 expires 2027-02-05T00:00:00Z (in 14 days)"
	count(waivers.warn) == 0 with input as doc with data.waivers as [past_edge]
}

test_expiry_warning_says_one_day_and_less_than_a_day if {
	tomorrow := fx.waiver("W-1", "CVE-2023-52425", "2027-01-23T06:00:00Z", {})
	tonight := fx.waiver("W-1", "CVE-2023-52425", "2027-01-22T23:59:59Z", {})
	some r in waivers.warn with input as doc with data.waivers as [tomorrow]
	endswith(r.msg, "(in 1 day)")
	some s in waivers.warn with input as doc with data.waivers as [tonight]
	endswith(s.msg, "(in less than a day)")
}

test_stale_waiver_expiring_soon_does_not_warn if {
	w := fx.waiver("W-9", "CVE-1999-0001", "2027-01-25T00:00:00Z", {})
	count(waivers.warn) == 0 with input as doc with data.waivers as [w]
}

test_warning_days_can_be_overridden if {
	w := fx.waiver("W-1", "CVE-2023-52425", "2027-02-11T00:00:00Z", {})
	count(waivers.warn) == 0 with input as doc with data.waivers as [w]
	overrides := {"prod": {"waiver_warning_days": 30}}
	some r in waivers.warn with input as doc with data.waivers as [w] with data.thresholds as overrides
	endswith(r.msg, "(in 20 days)")
}

test_expired_waiver_warns_that_its_findings_count_again if {
	w := fx.waiver("W-1", "CVE-2023-52425", "2026-12-31T00:00:00Z", {})
	warnings := waivers.warn with input as doc with data.waivers as [w]
	count(warnings) == 1
	some r in warnings
	r.rule == "waivers.expired"
	r.severity == "medium"
	r.msg == "waiver W-1 expired on 2026-12-31T00:00:00Z; CVE-2023-52425 is no longer waived"
	r.finding_ids == ["f1", "f2"]
	count(waivers.applied) == 0 with input as doc with data.waivers as [w]
	count(waivers.stale) == 0 with input as doc with data.waivers as [w]
}

test_waiver_expiring_exactly_now_has_expired if {
	w := fx.waiver("W-1", "CVE-2023-52425", fx.now, {})
	count(waivers.applied) == 0 with input as doc with data.waivers as [w]
	some r in waivers.warn with input as doc with data.waivers as [w]
	r.rule == "waivers.expired"
}

test_waiver_expiring_one_second_after_now_still_waives if {
	w := fx.waiver("W-1", "CVE-2023-52425", "2027-01-22T00:00:01Z", {})
	count(waivers.applied) == 1 with input as doc with data.waivers as [w]
}

test_expired_waiver_renewed_by_another_does_not_warn if {
	ws := [
		fx.waiver("W-1", "CVE-2023-52425", "2026-12-31T00:00:00Z", {}),
		fx.waiver("W-2", "CVE-2023-52425", "2027-12-31T00:00:00Z", {}),
	]
	count(waivers.warn) == 0 with input as doc with data.waivers as ws
	{a.id | some a in waivers.applied} == {"W-2"} with input as doc with data.waivers as ws
}

test_expired_waiver_without_findings_is_quiet if {
	w := fx.waiver("W-1", "CVE-1999-0001", "2026-12-31T00:00:00Z", {})
	count(waivers.warn) == 0 with input as doc with data.waivers as [w]
	count(waivers.stale) == 0 with input as doc with data.waivers as [w]
}

test_expired_waiver_out_of_scope_is_quiet if {
	w := fx.waiver("W-1", "CVE-2023-52425", "2026-12-31T00:00:00Z", {"environment": "staging"})
	count(waivers.warn) == 0 with input as doc with data.waivers as [w]
}

test_no_waivers_no_reports if {
	count(waivers.applied) == 0 with input as doc
	count(waivers.stale) == 0 with input as doc
	count(waivers.warn) == 0 with input as doc
}

scoped(id, finding_id) := object.union(fx.vulnerability(finding_id, "CVE-2023-52425", "high"), {"package": {
	"name": "expat", "version": "2.5.0-r0", "purl": "pkg:apk/alpine/expat@2.5.0-r0?arch=x86_64",
}})

test_applied_names_the_most_specific_waiver_per_finding if {
	d := fx.with_findings("prod", [scoped("W", "f1"), fx.vulnerability("f2", "CVE-2023-52425", "high")])
	ws := [
		fx.waiver("W-WIDE", "CVE-2023-52425", "2027-06-30T00:00:00Z", {}),
		fx.waiver("W-PURL", "CVE-2023-52425", "2027-06-30T00:00:00Z", {"purl": "pkg:apk/alpine/expat"}),
	]
	applied := {a.id: [a.finding_ids, a.scope] | some a in waivers.applied} with input as d with data.waivers as ws
	applied == {"W-WIDE": [["f2"], {}], "W-PURL": [["f1"], {"purl": "pkg:apk/alpine/expat"}]}
}

test_scoped_waiver_matching_nothing_is_stale if {
	d := doc
	ws := [fx.waiver("W-PURL", "CVE-2023-52425", "2027-06-30T00:00:00Z", {"purl": "pkg:apk/alpine/expat"})]
	waivers.stale == {"W-PURL"} with input as d with data.waivers as ws
}

test_expired_scoped_waiver_warns_only_for_its_findings if {
	d := fx.with_findings("prod", [scoped("W", "f1"), fx.vulnerability("f2", "CVE-2023-52425", "high")])
	ws := [fx.waiver("W-OLD", "CVE-2023-52425", "2027-01-01T00:00:00Z", {"purl": "pkg:apk/alpine/expat"})]
	warnings := waivers.warn with input as d with data.waivers as ws
	[["f1"]] == [w.finding_ids | some w in warnings; w.rule == "waivers.expired"]
}

vex_doc := object.union(doc, {"vex": [{
	"id": "0123456789ab/#0", "document": "sha256:0123456789ab", "statement": "#0", "format": "openvex",
	"vulnerability": "CVE-2022-0778", "aliases": ["GHSA-x"], "status": "not_affected",
	"justification": "vulnerable_code_not_in_execute_path", "impact_statement": "no certificates are parsed",
	"author": "secops@example.com", "timestamp": "2027-01-10T00:00:00.000000Z",
	"products": [{"unmatched": "product-ABC"}, {"image_digest": fx.digest, "subcomponents": ["pkg:npm/x"]}, {"image_digest": fx.digest}],
}]})

test_applied_lists_a_vex_statement_with_its_document_and_reason if {
	d := vex_doc
	applied := waivers.applied with input as d
	applied == {{
		"kind": "vex",
		"id": "0123456789ab/#0",
		"rule": "CVE-2022-0778",
		"document": "sha256:0123456789ab",
		"statement": "#0",
		"format": "openvex",
		"status": "not_affected",
		"justification": "vulnerable_code_not_in_execute_path",
		"impact_statement": "no certificates are parsed",
		"author": "secops@example.com",
		"timestamp": "2027-01-10T00:00:00.000000Z",
		"finding_ids": ["f3"],
		"scope": {"image_digest": fx.digest},
	}}
	count(waivers.stale) == 0 with input as d
}

test_vex_scope_names_subcomponents if {
	scope := waivers.vex_scope({"image_digest": "sha256:1", "subcomponents": ["pkg:npm/a", "pkg:npm/b"]})
	scope == {"image_digest": "sha256:1", "subcomponents": "pkg:npm/a, pkg:npm/b"}
}
