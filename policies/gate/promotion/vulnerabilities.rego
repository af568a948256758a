# METADATA
# title: Vulnerabilities
# description: >-
#   Known vulnerabilities (CVEs) in the image's packages, judged by severity. Which severities block
#   and which warn is data.gate.config.thresholds.<environment>.vulnerabilities: in prod critical,
#   high and unknown block (an unrated CVE fails closed); elsewhere critical blocks and high and
#   unknown warn. A waiver naming the CVE waives it. The `unfixed` setting (deny, the default, or
#   warn) decides what a blocking vulnerability without a fixed version does; `max_days_fixable`
#   (null, the default: off) denies a vulnerability whose fix has been available for longer.
package gate.promotion.vulnerabilities

import rego.v1

import data.gate.lib.config
import data.gate.lib.findings
import data.gate.lib.waivers

# These rules run once per vulnerability (tens of thousands in a large image), so they visit only
# the vulnerabilities (findings.positions) and phrase messages with few function calls: regorus is
# an interpreter, and building an intermediate set of findings or calling rule functions dominates
# its time. Local copies: regorus loses a rule read through an import inside a function body.
severity_words := findings.severity_words

result_severities := findings.result_severities_map

# The positions of waived findings (each scope, most specific first): `not i in waived_positions` is
# waivers.waived(finding) without a function call per vulnerability.
waived_positions := waivers.waived_positions

# A malformed setting leaves these empty; settings.invalid denies it.
default deny_severities := set()

deny_severities := {s | some s in severities} if {
	severities := findings.settings.vulnerabilities.deny
	is_array(severities)
}

default warn_severities := set()

warn_severities := {s | some s in severities} - deny_severities if {
	severities := findings.settings.vulnerabilities.warn
	is_array(severities)
}

# What a blocking vulnerability without a fixed version does: deny, or warn (setting unfixed). A
# malformed value denies (settings.invalid) and keeps the deny here.
default unfixed_action := "deny"

unfixed_action := "warn" if findings.settings.unfixed == "warn"

# The fixed_version values of a vulnerability that warns instead of denying: with `not fixed in
# unfixed_warned` the deny rule checks the setting without a function call per vulnerability.
default unfixed_warned := set()

unfixed_warned := {"", null} if unfixed_action == "warn"

# Days a fix may have been available before the vulnerability denies; null: no limit.
default max_days_fixable := null

max_days_fixable := findings.settings.max_days_fixable if config.non_negative(findings.settings.max_days_fixable)

day_ns := ((24 * 60) * 60) * 1000000000

# finding id -> when the decision log first saw it with a fixed version (gate evaluate sets it).
default first_seen_fixable := {}

first_seen_fixable := input.first_seen_fixable if is_object(input.first_seen_fixable)

# METADATA
# title: Vulnerability at a blocking severity
# description: >-
#   A vulnerability whose severity the environment denies, with no waiver. Each result names the
#   CVE, the package, its installed version and the fixed version (or that there is no fix), and
#   carries the finding's severity (unknown counts as high).
# custom:
#   rule_id: vulnerabilities.severity
#   severity: high
#   solution: >-
#     Upgrade the package to its fixed version and rebuild the image; where there is no fix, remove
#     or replace the package, or waive the CVE with a reason, an approver and an expiry.
deny contains result if {
	some i in findings.positions.vulnerability
	finding := input.findings[i]
	finding.severity in deny_severities
	not object.get(object.get(finding, "package", {}), "fixed_version", "") in unfixed_warned
	not i in waived_positions
	result := vulnerability_result(finding, "vulnerabilities.severity")
}

# METADATA
# title: Vulnerability without a fix, warned on
# description: >-
#   A vulnerability at a blocking severity that has no fixed version, with no waiver, in an
#   environment whose `unfixed` setting is warn: it warns instead of denying, and says so.
# custom:
#   rule_id: vulnerabilities.unfixed_warning
#   severity: medium
#   solution: >-
#     Remove or replace the package, or assess the CVE and waive it; upgrade it as soon as a fixed
#     version is released.
warn contains result if {
	unfixed_action == "warn"
	some i in findings.positions.vulnerability
	finding := input.findings[i]
	finding.severity in deny_severities
	object.get(object.get(finding, "package", {}), "fixed_version", "") in unfixed_warned
	not i in waived_positions
	found := vulnerability_result(finding, "vulnerabilities.unfixed_warning")
	result := object.union(found, {"msg": sprintf(
		"%s (warns instead of denying: setting unfixed is warn in %s)",
		[found.msg, config.environment],
	)})
}

# METADATA
# title: Vulnerability fixable for too long
# description: >-
#   A vulnerability with a fixed version, with no waiver, whose fix has been available for more
#   than max_days_fixable days (off when null, the default): from input.first_seen_fixable[id],
#   the first time the decision log saw the finding with a fixed version (a finding missing there
#   is seen for the first time now), to input.now. Every severity counts.
# custom:
#   rule_id: vulnerabilities.fixable_too_long
#   severity: high
#   solution: >-
#     Upgrade the package to its fixed version and rebuild the image, or waive the CVE with a reason,
#     an approver and an expiry.
deny contains result if {
	is_number(max_days_fixable)
	now_ns := config.now_ns
	some i in findings.positions.vulnerability
	finding := input.findings[i]
	fixed := object.get(object.get(finding, "package", {}), "fixed_version", "")
	is_string(fixed)
	fixed != ""
	not i in waived_positions
	seen_ns := config.time_ns(object.get(first_seen_fixable, finding.id, input.now))
	now_ns - seen_ns > max_days_fixable * day_ns
	found := vulnerability_result(finding, "vulnerabilities.fixable_too_long")
	result := object.union(found, {"msg": sprintf(
		"%s, available for %v days (more than max_days_fixable %v in %s)",
		[found.msg, floor((now_ns - seen_ns) / day_ns), max_days_fixable, config.environment],
	)})
}

# METADATA
# title: Vulnerability at a warning severity
# description: >-
#   A vulnerability whose severity the environment warns on (outside prod: high and unknown), with
#   no waiver. It does not block promotion.
# custom:
#   rule_id: vulnerabilities.severity_warning
#   severity: medium
#   solution: Upgrade the package to its fixed version before this image is promoted to prod.
warn contains result if {
	some i in findings.positions.vulnerability
	finding := input.findings[i]
	finding.severity in warn_severities
	not i in waived_positions
	result := vulnerability_result(finding, "vulnerabilities.severity_warning")
}

# One result per vulnerability: the package's facts read once, and each phrase chosen by a lookup
# keyed on the empty string rather than by a function with an `else`: regorus runs a builtin call
# several times faster than a call to a rule function, and these run once per vulnerability.
# "critical vulnerability CVE-2021-44906 in minimist 1.2.5 (juice-shop/node_modules/minimist/package.json): fixed in 1.2.6"
vulnerability_result(finding, rule_id) := result if {
	pkg := object.get(finding, "package", {})
	fixed := object.get(pkg, "fixed_version", "")
	name := object.get(pkg, "name", "an unnamed package")
	version := object.get(pkg, "version", "")
	path := object.get(pkg, "path", "")

	# "name version", or whichever of the two is not empty
	what := object.get({"": version}, name, object.get({"": name}, version, concat(" ", [name, version])))
	result := {
		"msg": sprintf("%s vulnerability %s in %s%s: %s", [
			object.get(severity_words, finding.severity, finding.severity),
			finding.rule,
			what,
			object.get({"": ""}, path, sprintf(" (%s)", [path])),
			object.get({"": "no fixed version available"}, fixed, sprintf("fixed in %s", [fixed])),
		]),
		"rule": rule_id,
		"severity": object.get(result_severities, finding.severity, "high"),
		"finding_ids": [finding.id],
		"solution": object.get(
			{"": sprintf(
				"No fixed version of %s yet: remove or replace it, or assess %s and waive it with a reason and an expiry",
				[what, finding.rule],
			)},
			fixed,
			sprintf(
				"Upgrade %s to %s or later and rebuild the image, or waive %s with a reason and an expiry",
				[what, fixed, finding.rule],
			),
		),
	}
}
