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
	ws := [w]
	waivers.matched_ids(w) == ["b", "a"] with input as d with data.waivers as ws
}

test_days_left_rounds_down if {
	d := doc
	w := fx.waiver("W-1", "CVE-1", "2027-01-31T23:59:59Z", {})
	waivers.days_left(w) == 9 with input as d
	waivers.days_left_text(w) == "in 9 days" with input as d
}

# --- finer scope: purl, package, path, target, finding id, image digest --------------------------

lodash(id, version, path) := object.union(fx.vulnerability(id, "CVE-2021-23337", "high"), {
	"package": {
		"name": "lodash", "version": version, "type": "npm", "path": path,
		"purl": sprintf("pkg:npm/lodash@%s", [version]),
	},
	"raw": {"Target": "Node.js"},
})

lodash_old := lodash("l1", "4.17.20", "app/node_modules/lodash/package.json")

lodash_new := lodash("l2", "4.17.21", "app/node_modules/a/node_modules/lodash/package.json")

lodash_doc := fx.with_findings("prod", [lodash_old, lodash_new])

lodash_waiver(id, scope) := fx.waiver(id, "CVE-2021-23337", "2027-06-01T00:00:00Z", scope)

test_purl_with_version_scope if {
	d := lodash_doc
	old := lodash_old
	new := lodash_new
	ws := [lodash_waiver("W-1", {"purl": "pkg:npm/lodash@4.17.20"})]
	waivers.waived(old) with input as d with data.waivers as ws
	not waivers.waived(new) with input as d with data.waivers as ws
}

test_purl_without_version_covers_every_version if {
	d := lodash_doc
	old := lodash_old
	new := lodash_new
	ws := [lodash_waiver("W-1", {"purl": "pkg:npm/lodash"})]
	waivers.waived(old) with input as d with data.waivers as ws
	waivers.waived(new) with input as d with data.waivers as ws
	waivers.matched_ids(ws[0]) == ["l1", "l2"] with input as d with data.waivers as ws
}

test_purl_is_compared_canonically if {
	d := lodash_doc
	old := lodash_old
	ws := [lodash_waiver("W-1", {"purl": "PKG:NPM/LoDash@4.17.20"})]
	ws2 := [lodash_waiver("W-1", {"purl": "pkg:NPM/LoDash@4.17.20"})]
	not waivers.waived(old) with input as d with data.waivers as ws # the scheme "pkg:" is lowercase by the spec
	waivers.waived(old) with input as d with data.waivers as ws2
	waivers.purl_matches("pkg:pypi/Django_Rest@3.0", "pkg:pypi/django-rest@3.0")
	waivers.purl_matches("pkg:npm/@babel/core", "pkg:npm/%40babel/core@7.0.0")
	not waivers.purl_matches("pkg:golang/github.com/Foo/bar", "pkg:golang/github.com/foo/bar@v1.0.0")
}

test_purl_qualifiers_are_ignored_unless_given if {
	waivers.purl_matches("pkg:deb/debian/curl@7.50", "pkg:deb/debian/curl@7.50?arch=amd64&distro=bookworm")
	waivers.purl_matches("pkg:deb/debian/curl?arch=amd64", "pkg:deb/debian/curl@7.50?arch=amd64&distro=bookworm")
	not waivers.purl_matches("pkg:deb/debian/curl?arch=arm64", "pkg:deb/debian/curl@7.50?arch=amd64")
	not waivers.purl_matches("pkg:deb/debian/curl", "pkg:deb/ubuntu/curl@7.50")
	not waivers.purl_matches("pkg:npm/lodash", "")
}

test_package_scope if {
	d := lodash_doc
	old := lodash_old
	ws := [lodash_waiver("W-1", {"package": "lodash"})]
	other := [lodash_waiver("W-1", {"package": "underscore"})]
	waivers.waived(old) with input as d with data.waivers as ws
	not waivers.waived(old) with input as d with data.waivers as other
}

test_path_scope if {
	d := lodash_doc
	old := lodash_old
	new := lodash_new
	ws := [lodash_waiver("W-1", {"path": "app/node_modules/lodash/package.json"})]
	waivers.waived(old) with input as d with data.waivers as ws
	not waivers.waived(new) with input as d with data.waivers as ws
}

test_target_scope if {
	d := lodash_doc
	old := lodash_old
	same := [lodash_waiver("W-1", {"target": "Node.js"})]
	other := [lodash_waiver("W-1", {"target": "alpine 3.10"})]
	waivers.waived(old) with input as d with data.waivers as same
	not waivers.waived(old) with input as d with data.waivers as other
}

test_target_scope_is_a_secrets_location if {
	key := object.union(fx.vulnerability("s1", "private-key", "high"), {"kind": "secret", "location": {"path": "/app/key.pem"}})
	d := fx.with_findings("prod", [key])
	same := [fx.waiver("W-1", "private-key", "2027-06-01T00:00:00Z", {"target": "/app/key.pem"})]
	other := [fx.waiver("W-1", "private-key", "2027-06-01T00:00:00Z", {"target": "/app/other.pem"})]
	waivers.waived(key) with input as d with data.waivers as same
	not waivers.waived(key) with input as d with data.waivers as other
}

test_finding_id_scope if {
	d := lodash_doc
	old := lodash_old
	new := lodash_new
	ws := [lodash_waiver("W-1", {"finding_id": "l2"})]
	not waivers.waived(old) with input as d with data.waivers as ws
	waivers.waived(new) with input as d with data.waivers as ws
}

test_image_digest_scope if {
	d := lodash_doc
	old := lodash_old
	same := [lodash_waiver("W-1", {"image_digest": d.artifact.digest})]
	other := [lodash_waiver("W-1", {"image_digest": "sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"})]
	waivers.waived(old) with input as d with data.waivers as same
	not waivers.waived(old) with input as d with data.waivers as other
}

test_combined_scope_needs_every_field if {
	d := lodash_doc
	old := lodash_old
	new := lodash_new
	ws := [lodash_waiver("W-1", {"package": "lodash", "purl": "pkg:npm/lodash@4.17.21", "environment": "prod"})]
	not waivers.waived(old) with input as d with data.waivers as ws
	waivers.waived(new) with input as d with data.waivers as ws
}

test_scoped_waiver_is_not_a_rule_wide_waiver if {
	d := lodash_doc
	ws := [lodash_waiver("W-1", {"purl": "pkg:npm/lodash@4.17.20"}), lodash_waiver("W-2", {"environment": "prod"})]
	scoped := [ws[0]]
	count(waivers.active_rules) == 0 with input as d with data.waivers as scoped
	waivers.waived_positions == {0} with input as d with data.waivers as scoped
	waivers.active_rules == {"CVE-2021-23337"} with input as d with data.waivers as ws
}

test_most_specific_waiver_applies if {
	d := lodash_doc
	ws := [
		lodash_waiver("W-A", {}),
		lodash_waiver("W-B", {"purl": "pkg:npm/lodash"}),
		lodash_waiver("W-C", {"purl": "pkg:npm/lodash@4.17.20", "path": "app/node_modules/lodash/package.json"}),
	]
	applied := waivers.applied_at with input as d with data.waivers as ws
	applied[0].id == "W-C"
	applied[1].id == "W-B"
	waivers.matched_ids(ws[0]) == [] with input as d with data.waivers as ws
	waivers.matched_ids(ws[1]) == ["l2"] with input as d with data.waivers as ws
	waivers.matched_ids(ws[2]) == ["l1"] with input as d with data.waivers as ws
}

test_equally_specific_waivers_tie_on_the_smallest_id if {
	d := lodash_doc
	ws := [lodash_waiver("W-2", {"package": "lodash"}), lodash_waiver("W-1", {"purl": "pkg:npm/lodash"})]
	applied := waivers.applied_at with input as d with data.waivers as ws
	applied[0].id == "W-1"
	applied[1].id == "W-1"
}

# --- VEX statements (input.vex) as triage ---------------------------------------------------------------

vex_statement(id, status, timestamp, products) := {
	"id": id, "document": "sha256:0000", "statement": id, "format": "openvex",
	"vulnerability": "CVE-2021-23337", "aliases": [], "status": status, "timestamp": timestamp,
	"justification": "vulnerable_code_not_in_execute_path", "products": products,
}

with_vex(statements) := object.union(lodash_doc, {"vex": statements})

test_vex_not_affected_on_a_package_triages_that_version if {
	d := with_vex([vex_statement("V-1", "not_affected", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash@4.17.20"}])])
	old := lodash_old
	new := lodash_new
	waivers.waived(old) with input as d
	not waivers.waived(new) with input as d
	waivers.waived_positions == {0} with input as d
}

test_vex_affected_and_under_investigation_do_not_triage if {
	d := with_vex([
		vex_statement("V-1", "affected", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash"}]),
		vex_statement("V-2", "under_investigation", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash"}]),
	])
	count(waivers.waived_positions) == 0 with input as d
}

test_vex_newer_statement_supersedes_older if {
	older := vex_statement("V-1", "not_affected", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash"}])
	newer := vex_statement("V-2", "affected", "2027-01-02T00:00:00.000000Z", [{"purl": "pkg:npm/lodash@4.17.21"}])
	d := with_vex([newer, older])
	# the newer affected statement re-opens 4.17.21 only; 4.17.20 stays triaged by the older statement
	waivers.waived_positions == {0} with input as d
}

test_vex_tie_between_statuses_is_not_triaged if {
	d := with_vex([
		vex_statement("V-1", "not_affected", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash"}]),
		vex_statement("V-2", "affected", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash"}]),
	])
	count(waivers.waived_positions) == 0 with input as d
}

test_vex_subcomponents_and_image_digest if {
	digest := object.get(object.get(lodash_doc, "artifact", {}), "digest", "none")
	d := with_vex([vex_statement("V-1", "fixed", "2027-01-01T00:00:00.000000Z", [
		{"image_digest": digest, "subcomponents": ["pkg:npm/lodash@4.17.21"]},
		{"image_digest": "sha256:other", "subcomponents": ["pkg:npm/lodash@4.17.20"]},
	])])
	waivers.waived_positions == {1} with input as d
}

test_vex_unmatched_product_matches_nothing if {
	d := with_vex([vex_statement("V-1", "not_affected", "2027-01-01T00:00:00.000000Z", [{"unmatched": "product-ABC"}])])
	count(waivers.waived_positions) == 0 with input as d
}

test_waiver_wins_a_tie_with_vex if {
	d := with_vex([vex_statement("V-1", "not_affected", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash"}])])
	ws := [lodash_waiver("W-1", {"purl": "pkg:npm/lodash"})]
	applied := waivers.applied_at with input as d with data.waivers as ws
	applied[0].kind == "waiver"
	applied[0].id == "W-1"
}

test_more_specific_vex_wins_over_a_rule_wide_waiver if {
	d := with_vex([vex_statement("V-1", "not_affected", "2027-01-01T00:00:00.000000Z", [{"purl": "pkg:npm/lodash"}])])
	ws := [lodash_waiver("W-1", {})]
	applied := waivers.applied_at with input as d with data.waivers as ws
	applied[0].kind == "vex"
	applied[0].id == "V-1"
	waivers.matched_ids(ws[0]) == [] with input as d with data.waivers as ws
}

# Statements with and without a package purl side by side (regorus once failed "not an object" on this mix).
test_vex_purl_and_image_products_together if {
	digest := object.get(object.get(lodash_doc, "artifact", {}), "digest", "none")
	d := with_vex([
		vex_statement("V-1", "fixed", "2027-01-01T00:00:00.000000Z", [{"image_digest": digest, "subcomponents": ["pkg:npm/lodash@4.17.21"]}]),
		vex_statement("V-2", "not_affected", "2027-01-01T00:00:00.000000Z", [{"unmatched": "product-ABC"}, {"purl": "pkg:npm/lodash@4.17.20"}]),
	])
	waivers.waived_positions == {0, 1} with input as d
}
