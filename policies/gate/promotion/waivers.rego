# METADATA
# title: Waivers
# description: >-
#   Reports on data.waivers for the decision record: `applied` (waivers that apply to at least one
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
