# METADATA
# title: Waivers
# description: >-
#   Reports on triage for the decision record: `applied` (waivers and VEX statements that apply to at least one
#   finding, with the ids of those findings and the scope fields the waiver set: a finding matched
#   by several waivers is listed under the most specific one only), `stale` (ids of waivers in scope and unexpired that
#   matched nothing), and warnings for waivers about to expire and for expired waivers whose
#   findings are back. Whether a finding is waived is decided in gate.lib.waivers.
package gate.promotion.waivers

import rego.v1

import data.gate.lib.waivers

applied contains entry if {
	some waiver in waivers.active
	ids := waivers.matched_ids(waiver)
	count(ids) > 0
	entry := {
		"id": waiver.id,
		"rule": waiver.rule,
		"expires": waiver.expires,
		"approved_by": object.get(waiver, "approved_by", null),
		"reason": object.get(waiver, "reason", null),
		"finding_ids": ids,
		"scope": waivers.scope(waiver),
	}
}

# VEX statements that apply to at least one finding (its most specific triage entry), with the
# product that matched: the decision's triage lists them next to waivers.
applied contains entry if {
	some s, applied_positions in waivers.vex_applied_positions
	statement := waivers.vex_statements[s]
	positions := sort(applied_positions)
	product := statement.products[waivers.applied_at[positions[0]].product]
	entry := {
		"kind": "vex",
		"id": statement.id,
		"rule": statement.vulnerability,
		"document": statement.document,
		"statement": statement.statement,
		"format": statement.format,
		"status": statement.status,
		"justification": object.get(statement, "justification", null),
		"impact_statement": object.get(statement, "impact_statement", null),
		"author": object.get(statement, "author", null),
		"timestamp": statement.timestamp,
		"finding_ids": [input.findings[i].id | some i in positions],
		"scope": vex_scope(product),
	}
}

# The product fields that matched, as text (subcomponents joined by ", ").
vex_scope(product) := object.union(
	{key: value | some key in ["image_digest", "image", "tag", "purl"]; value := product[key]; is_string(value)},
	{"subcomponents": concat(", ", product.subcomponents) | count(object.get(product, "subcomponents", [])) > 0},
)

stale contains waiver.id if {
	some waiver in waivers.active
	count(waivers.matched_ids(waiver)) == 0
}

# METADATA
# title: Waiver expires soon
# description: >-
#   An applied waiver expires within waiver_warning_days (14 by default) of the evaluation time.
#   It still waives until then.
# custom:
#   rule_id: waivers.expiring
#   severity: low
#   solution: Fix the waived findings before the waiver expires, or renew it with a new approval.
warn contains result if {
	some waiver in waivers.active
	waivers.expiring_soon(waiver)
	ids := waivers.matched_ids(waiver)
	count(ids) > 0
	result := {
		"msg": sprintf(
			"waiver %s for %s expires %s (%s)",
			[waiver.id, waiver.rule, waiver.expires, waivers.days_left_text(waiver)],
		),
		"rule": "waivers.expiring",
		"severity": "low",
		"finding_ids": ids,
		"solution": sprintf(
			"Fix %s before %s, or renew waiver %s with a new approval and expiry",
			[waiver.rule, waiver.expires, waiver.id],
		),
	}
}

# METADATA
# title: Waiver expired
# description: >-
#   A waiver in scope has expired while findings it named are still there and no other waiver
#   covers them: those findings count again.
# custom:
#   rule_id: waivers.expired
#   severity: medium
#   solution: Fix the findings, or renew the waiver with a new approval and expiry.
warn contains result if {
	some waiver in waivers.expired
	ids := [finding.id |
		some i in waivers.positions[waiver.rule]
		finding := input.findings[i]
		waivers.finding_matches(waiver, finding)
		not waivers.waived(finding)
	]
	count(ids) > 0
	result := {
		"msg": sprintf(
			"waiver %s expired on %s; %s is no longer waived",
			[waiver.id, waiver.expires, waiver.rule],
		),
		"rule": "waivers.expired",
		"severity": "medium",
		"finding_ids": ids,
		"solution": sprintf(
			"Fix %s, or renew waiver %s with a new approval and expiry",
			[waiver.rule, waiver.id],
		),
	}
}
