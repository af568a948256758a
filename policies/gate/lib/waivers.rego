# METADATA
# title: Waiver matching
# description: >-
#   Waivers come from data.waivers (the engine has checked their shape: id, rule, reason,
#   approved_by and expires required; the scope fields optional). A waiver is in scope when its
#   image (if set) is input.artifact.image, its image_digest (if set) is input.artifact.digest and
#   its environment (if set) is input.environment; it is active while it has not expired
#   (expires > input.now). An active waiver waives the findings of its rule (CVE id, Trivy check
#   id, secret rule, license, quality-gate metric) that also match its finding scope: purl (the
#   package's purl; without a version it covers every version; compared canonically), package
#   (the package name), path (location.path or package.path), target (the Trivy target: raw.Target
#   or location.path) and finding_id, compared exactly. When several waivers match a finding the most specific one applies: the one with
#   the most scope fields set (rule not counted), ties broken by the smallest id. Time comes from
#   input.now only, so a stored decision replays identically.
#
#   VEX statements (input.vex, read by gate.vex from --vex documents) are triage too. A statement
#   names a vulnerability (and aliases) and products; a product matches the artifact (image_digest,
#   image repository, tag) or the finding's package purl, and when it lists subcomponents the
#   finding's package must be one of them. For each finding the newest matching statements count
#   (a newer statement supersedes older ones, across documents); when they are all not_affected or
#   fixed the finding is triaged, and any affected or under_investigation among them keeps it open.
#   A VEX entry's specificity is the number of product fields it sets (subcomponents count one); the
#   most specific triage entry applies, and on a tie a waiver applies before a VEX statement.
package gate.lib.waivers

import rego.v1

import data.gate.lib.config

day_ns := ((24 * 60) * 60) * 1000000000

# Local copies of imported values: function bodies below refer to these, never to an import's rules
# directly (regorus 0.x loses such references when the caller evaluated a rule of this package first).
now_ns := config.now_ns

warning_days := config.waiver_warning_days

default declared := []

declared := data.waivers if is_array(data.waivers)

# The scope fields a waiver may set besides its rule: how many it sets is its specificity.
scope_keys := ["image", "image_digest", "environment", "purl", "package", "path", "target", "finding_id"]

# Scope fields compared with the artifact being judged, and with each finding.
artifact_scope := {"image": "image", "image_digest": "digest"}

finding_scope_keys := {"purl", "package", "path", "target", "finding_id"}

# The scope fields a waiver sets, with their values (the matched scope shown in the decision).
scope(waiver) := {key: waiver[key] | some key in scope_keys; is_string(object.get(waiver, key, null))}

specificity(waiver) := count(scope(waiver))

artifact_matches(waiver, key) if object.get(waiver, key, null) == null

# No artifact (input.artifact null): an image or image_digest scope matches nothing.
artifact_matches(waiver, key) if waiver[key] == input.artifact[artifact_scope[key]]

environment_matches(waiver) if object.get(waiver, "environment", null) == null

environment_matches(waiver) if waiver.environment == input.environment

in_scope(waiver) if {
	artifact_matches(waiver, "image")
	artifact_matches(waiver, "image_digest")
	environment_matches(waiver)
}

expires_ns(waiver) := config.time_ns(waiver.expires)

# Waivers in scope that have not expired: these waive findings.
active contains waiver if {
	some waiver in declared
	in_scope(waiver)
	expires_ns(waiver) > now_ns
}

# Waivers in scope that have expired (expires <= now): these waive nothing any more.
expired contains waiver if {
	some waiver in declared
	in_scope(waiver)
	expires_ns(waiver) <= now_ns
}

# Active waivers by rule: a finding is compared with the waivers of its rule only.
active_by_rule[rule] contains waiver if {
	some waiver in active
	rule := waiver.rule
}

# Waived: an active waiver of the finding's rule matches the finding's scope, or a VEX statement
# silences it (both are triage).
waived(finding) if {
	some waiver in active_by_rule[finding.rule]
	finding_matches(waiver, finding)
}

waived(finding) if finding.id in vex_waived_ids

# The rules active waivers waive wholly (no finding scope): a set lookup per finding for callers
# that judge many findings. A waiver with a finding scope is not here: use waived_positions.
active_rules := {waiver.rule |
	some waiver in active
	not has_finding_scope(waiver)
}

has_finding_scope(waiver) if {
	some key in finding_scope_keys
	object.get(waiver, key, null) != null
}

# Where the findings of each rule are in input.findings, found in one pass: a waiver's findings are
# looked up there instead of every finding being visited once per waiver (and per use).
positions[rule] contains i if {
	some i, finding in input.findings
	rule := finding.rule
}

# The active waivers matching the finding at each position of input.findings.
candidates[i] contains waiver if {
	some waiver in active
	some i in positions[waiver.rule]
	finding_matches(waiver, input.findings[i])
}

# --- VEX statements (input.vex, normalized by gate.vex) as triage entries -------------------------

default vex_statements := []

vex_statements := input.vex if is_array(input.vex)

# The statuses that silence a finding; affected and under_investigation do not.
vex_suppressing := {"not_affected", "fixed"}

# [statement index, product index] of every product of every statement, by the vulnerability ids the
# statement names (its vulnerability and aliases): a finding is compared with the claims of its rule only.
vex_claims[rule] contains [s, p] if {
	some s, statement in vex_statements
	some rule in array.concat([statement.vulnerability], object.get(statement, "aliases", []))
	some p, _ in statement.products
}

# The claims whose product matches the finding at each position (any status). A finding is compared only
# with the claims of its rule that can match it: image-wide claims, and claims about its package (looked
# up by type/namespace/name); what can be computed once per product or per finding (the artifact
# comparison, each purl parsed) is, below, so the per-pair work is a few comparisons.
vex_matching[i] contains claim if {
	some rule, claims in vex_wide_claims
	some i in positions[rule]
	some claim in claims
}

vex_matching[i] contains claim if {
	some i, parsed in vex_finding_purl
	rule := input.findings[i].rule
	some claim in vex_package_claims[concat("|", [rule, package_key(parsed)])]
	vex_purl_matches(claim, i)
	vex_subcomponents_match(claim, i)
}

# The claims whose product names something gate can compare and matches the artifact.
vex_artifact_claims contains [s, p] if {
	some s, statement in vex_statements
	some p, product in statement.products
	product_names_something(product)
	product_artifact_matches(product)
}

# Claims about the whole artifact (no package purl, no subcomponents), by rule.
vex_wide_claims[rule] contains claim if {
	some rule, claims in vex_claims
	some claim in claims
	claim in vex_artifact_claims
	product := vex_statements[claim[0]].products[claim[1]]
	object.get(product, "purl", null) == null
	count(object.get(product, "subcomponents", [])) == 0
}

# Claims about a package (their purl product, else each subcomponent), by "<rule>|<package key>" (a
# collision only adds candidates, each still compared in full).
vex_package_claims[key] contains claim if {
	some rule, claims in vex_claims
	some claim in claims
	parsed := vex_product_purl[claim]
	key := concat("|", [rule, package_key(parsed)])
}

vex_package_claims[key] contains claim if {
	some rule, claims in vex_claims
	some claim in claims
	not claim in vex_purl_claims
	some parsed in vex_subcomponent_purls[claim]
	key := concat("|", [rule, package_key(parsed)])
}

vex_purl_claims := {claim | some claim, _ in vex_product_purl}

# The rules some package claim is about: only their findings' purls are parsed.
vex_package_rules := {rule |
	some rule, claims in vex_claims
	some claim in claims
	claim in vex_artifact_claims
	product := vex_statements[claim[0]].products[claim[1]]
	vex_names_a_package(product)
}

vex_names_a_package(product) if is_string(object.get(product, "purl", null))

vex_names_a_package(product) if count(object.get(product, "subcomponents", [])) > 0

package_key(parsed) := concat("/", [parsed.type, parsed.namespace, parsed.name])

# A claim's product purl and subcomponent purls, parsed once (an unparsable one is left out: it matches nothing).
vex_product_purl[claim] := parsed if {
	some claim in vex_artifact_claims
	purl := vex_statements[claim[0]].products[claim[1]].purl
	parsed := parse_purl(purl)
}

vex_subcomponent_purls[claim] := [parsed |
	some sub in vex_statements[claim[0]].products[claim[1]].subcomponents
	parsed := parse_purl(sub)
] if {
	some claim in vex_artifact_claims
	count(object.get(vex_statements[claim[0]].products[claim[1]], "subcomponents", [])) > 0
}

# The package purl of each finding a package claim may be about, parsed once.
vex_finding_purl[i] := parse_purl(input.findings[i]["package"].purl) if {
	some rule in vex_package_rules
	some i in positions[rule]
	is_string(object.get(object.get(input.findings[i], "package", {}), "purl", null))
}

vex_purl_matches(claim, _) if object.get(vex_statements[claim[0]].products[claim[1]], "purl", null) == null

vex_purl_matches(claim, i) if parsed_purl_matches(vex_product_purl[claim], vex_finding_purl[i])

vex_subcomponents_match(claim, _) if count(object.get(vex_statements[claim[0]].products[claim[1]], "subcomponents", [])) == 0

vex_subcomponents_match(claim, i) if {
	some want in vex_subcomponent_purls[claim]
	parsed_purl_matches(want, vex_finding_purl[i])
}

# The newest timestamp among the statements matching each position (gate.vex writes every timestamp in
# one fixed-width UTC format, so text order is time order): a newer statement supersedes older ones.
vex_latest[i] := times[count(times) - 1] if {
	some i, matching in vex_matching
	times := sort({vex_statements[claim[0]].timestamp | some claim in matching})
}

# Positions where a newest matching statement does not suppress: a tie between statuses is not silenced.
vex_reopened contains i if {
	some i, matching in vex_matching
	some claim in matching
	statement := vex_statements[claim[0]]
	statement.timestamp == vex_latest[i]
	status := statement.status
	not status in vex_suppressing
}

# The triage entries VEX gives each position: the newest matching statements, all suppressing.
vex_candidates[i] contains entry if {
	some i, matching in vex_matching
	not i in vex_reopened
	some claim in matching
	statement := vex_statements[claim[0]]
	statement.timestamp == vex_latest[i]
	product := statement.products[claim[1]]
	entry := {
		"kind": "vex",
		"id": statement.id,
		"statement": claim[0],
		"product": claim[1],
		"specificity": product_specificity(product),
	}
}

# How specific a product is: its image or package fields, plus one for subcomponents.
product_specificity(product) := count({key | some key in ["image_digest", "image", "tag", "purl"]; is_string(object.get(product, key, null))}) + count({1 | count(object.get(product, "subcomponents", [])) > 0})

# A product matches a finding when the artifact is the product's image (digest, repository, tag) or
# the finding's package is the product's package, and, with subcomponents, the finding's package is
# one of them (vex_matching). A product naming nothing gate can compare (unmatched) matches nothing.

product_names_something(product) if {
	some key in ["image_digest", "image", "purl"]
	is_string(object.get(product, key, null))
}

product_artifact_matches(product) if {
	every key, field in {"image_digest": "digest", "image": "image", "tag": "tag"} {
		product_field_matches(product, key, field)
	}
}

product_field_matches(product, key, _) if object.get(product, key, null) == null

product_field_matches(product, key, field) if product[key] == input.artifact[field]

# The ids of findings VEX silences (for waived(finding)).
vex_waived_ids := {input.findings[i].id | some i, _ in vex_candidates}

# --- one kind of thing: triage ---------------------------------------------------------------------

# Every triage entry at each position: the active waivers matching it and the VEX statements silencing it.
triage_candidates[i] contains entry if {
	some i, matching in candidates
	some waiver in matching
	entry := {"kind": "waiver", "id": waiver.id, "waiver": waiver, "specificity": specificity(waiver)}
}

triage_candidates[i] contains entry if {
	some i, entries in vex_candidates
	some entry in entries
}

# The triage entry that applies at each triaged position: the most specific; on a tie a waiver before
# a VEX statement (the organisation's own approval, which expires and warns), then the smallest id.
applied_at[i] := entry if {
	some i, matching in triage_candidates
	best := max({e.specificity | some e in matching})
	top := {e | some e in matching; e.specificity == best}
	kind := preferred_kind(top)
	best_id := min({e.id | some e in top; e.kind == kind})
	some entry in top
	entry.kind == kind
	entry.id == best_id
}

preferred_kind(entries) := "waiver" if {
	some e in entries
	e.kind == "waiver"
} else := "vex"

# The positions each VEX statement (its index in input.vex) applies to, found in one pass over applied_at.
vex_applied_positions[s] contains i if {
	some i, entry in applied_at
	entry.kind == "vex"
	s := entry.statement
}

# The positions in input.findings of triaged findings: `not i in waived_positions` is waived(finding)
# without a function call per finding.
waived_positions := {i | some i, _ in applied_at}

# The ids of the findings a waiver applies to (it is their most specific match), in input order.
matched_ids(waiver) := [finding.id |
	some i in positions[waiver.rule]
	applied_at[i].kind == "waiver"
	applied_at[i].id == waiver.id
	finding := input.findings[i]
]

# The finding's values for the finding scope fields ("" when the finding has none).
finding_value(finding, key) := object.get(object.get(finding, "package", {}), "name", "") if key == "package"
else := object.get(finding, "id", "")

# Every finding scope field the waiver sets matches the finding.
finding_matches(waiver, finding) if {
	every key in finding_scope_keys {
		field_matches(waiver, key, finding)
	}
}

field_matches(waiver, key, _) if object.get(waiver, key, null) == null

field_matches(waiver, "purl", finding) if purl_matches(waiver.purl, object.get(object.get(finding, "package", {}), "purl", ""))

field_matches(waiver, "path", finding) if waiver.path == object.get(object.get(finding, "location", {}), "path", null)

field_matches(waiver, "path", finding) if waiver.path == object.get(object.get(finding, "package", {}), "path", null)

# The Trivy target: kept in raw.Target for a vulnerability; a secret's, misconfiguration's or
# license's target is its location.path.
field_matches(waiver, "target", finding) if waiver.target == object.get(object.get(finding, "raw", {}), "Target", null)

field_matches(waiver, "target", finding) if waiver.target == object.get(object.get(finding, "location", {}), "path", null)

field_matches(waiver, key, finding) if {
	key in {"package", "finding_id"}
	value := waiver[key]
	value != ""
	value == finding_value(finding, key)
}

# purl matching (https://github.com/package-url/purl-spec): type, namespace and name must be equal
# after canonicalizing; the waiver's version, if it has one, must be equal; each qualifier the
# waiver gives must be the finding's; the finding's other qualifiers and any subpath are ignored.
purl_matches(pattern, purl) if parsed_purl_matches(parse_purl(pattern), parse_purl(purl))

# The same comparison on purls already parsed (parse_purl).
parsed_purl_matches(want, have) if {
	want.type == have.type
	want.namespace == have.namespace
	want.name == have.name
	version_matches(want.version, have.version)
	every key, value in want.qualifiers {
		have.qualifiers[key] == value
	}
}

version_matches(want, _) if want == ""

version_matches(want, have) if {
	want != ""
	want == have
}

# Types whose namespace and name are case-insensitive (the purl spec's PURL-TYPES): lowercased.
lowercase_types := {"alpm", "apk", "bitbucket", "composer", "deb", "github", "hex", "npm", "pypi"}

# pkg:type/namespace/name@version?qualifiers#subpath, split into its canonical parts.
parse_purl(purl) := parsed if {
	startswith(purl, "pkg:")
	no_subpath := split(purl, "#")[0]
	halves := split(no_subpath, "?")
	segments := split(trim_left(trim_prefix(halves[0], "pkg:"), "/"), "/")
	count(segments) >= 2
	type := lower(segments[0])
	last := segments[count(segments) - 1]
	at := indexof(last, "@")
	raw_name := name_before(last, at)
	raw_namespace := concat("/", array.slice(segments, 1, count(segments) - 1))
	parsed := {
		"type": type,
		"namespace": canonical_name(type, decode(raw_namespace)),
		"name": canonical_name(type, decode(raw_name)),
		"version": decode(version_after(last, at)),
		"qualifiers": qualifiers(array.slice(halves, 1, 2)),
	}
}

name_before(segment, at) := segment if at < 0

name_before(segment, at) := substring(segment, 0, at) if at >= 0

version_after(_, at) := "" if at < 0

version_after(segment, at) := substring(segment, at + 1, count(segment)) if at >= 0

# pypi names also treat "_" as "-".
canonical_name(type, name) := replace(lower(name), "_", "-") if type == "pypi"
else := lower(name) if type in lowercase_types
else := name

# "%40" (the @ of an npm scope) and the other escapes scanners write.
decode(text) := strings.replace_n({"%40": "@", "%2F": "/", "%2f": "/", "%3A": ":", "%3a": ":", "%2B": "+", "%2b": "+", "%20": " "}, text)

# The qualifiers after "?" (a list of zero or one text), as a key -> value object.
qualifiers(texts) := {lower(pair[0]): decode(concat("=", array.slice(pair, 1, count(pair)))) |
	some text in texts
	some item in split(text, "&")
	item != ""
	pair := split(item, "=")
}

# Whole days until the waiver expires (rounded down).
days_left(waiver) := floor((expires_ns(waiver) - now_ns) / day_ns)

# "in 9 days", "in 1 day", "in less than a day".
days_left_text(waiver) := "in less than a day" if days_left(waiver) < 1

days_left_text(waiver) := "in 1 day" if days_left(waiver) == 1

days_left_text(waiver) := sprintf("in %v days", [days]) if {
	days := days_left(waiver)
	days > 1
}

# Active, and expires within the warning window (a waiver expiring exactly at the edge warns).
expiring_soon(waiver) if {
	waiver in active
	expires_ns(waiver) - now_ns <= warning_days * day_ns
}
