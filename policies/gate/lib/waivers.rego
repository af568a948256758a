# METADATA
# title: Waiver matching
# description: >-
#   Waivers come from data.waivers (the engine has checked their shape: id, rule, reason,
#   approved_by and expires required; image and environment optional). A waiver is in scope when
#   its image (if set) is input.artifact.image and its environment (if set) is input.environment;
#   it is active while it has not expired (expires > input.now). An active waiver waives every
#   finding whose rule (CVE id, Trivy check id, secret rule, license, quality-gate metric) is the
#   waiver's rule. Time comes from input.now only, so a stored decision replays identically.
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

image_matches(waiver) if object.get(waiver, "image", null) == null

image_matches(waiver) if waiver.image == input.artifact.image

environment_matches(waiver) if object.get(waiver, "environment", null) == null

environment_matches(waiver) if waiver.environment == input.environment

in_scope(waiver) if {
	image_matches(waiver)
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

waived(finding) if finding.rule in active_rules

# The rules active waivers name: a set lookup per finding instead of a scan of every waiver.
active_rules := {waiver.rule | some waiver in active}

# Where the findings of each rule are in input.findings, found in one pass: a waiver's findings are
# looked up there instead of every finding being visited once per waiver (and per use).
positions[rule] contains i if {
	some i, finding in input.findings
	rule := finding.rule
}

# The ids of the findings a waiver names (those of its rule), in input order.
matched_ids(waiver) := [finding.id |
	some i in positions[waiver.rule]
	finding := input.findings[i]
]

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
