# METADATA
# title: Vulnerabilities
# description: >-
#   Known vulnerabilities (CVEs) in the image's packages, judged by severity. Which severities block
#   and which warn is data.gate.config.thresholds.<environment>.vulnerabilities: in prod critical,
#   high and unknown block (an unrated CVE fails closed); elsewhere critical blocks and high and
#   unknown warn. A waiver naming the CVE waives it.
package gate.promotion.vulnerabilities

import rego.v1

import data.gate.lib.findings
import data.gate.lib.waivers

# These rules run once per vulnerability (tens of thousands in a large image), so they visit only
# the vulnerabilities (findings.positions) and phrase messages with few function calls: regorus is
# an interpreter, and building an intermediate set of findings or calling rule functions dominates
# its time. Local copies: regorus loses a rule read through an import inside a function body.
severity_words := findings.severity_words

result_severities := findings.result_severities_map

# The rules active waivers name: `not rule in waived_rules` is waivers.waived(finding) without a
# function call per vulnerability.
waived_rules := waivers.active_rules

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
	rule := finding.rule
	not rule in waived_rules
	result := vulnerability_result(finding, "vulnerabilities.severity")
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
	rule := finding.rule
	not rule in waived_rules
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
