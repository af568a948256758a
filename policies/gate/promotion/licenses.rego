# METADATA
# title: Licenses
# description: >-
#   Package licenses Trivy classified by risk (forbidden and restricted licenses are critical and
#   high). By default they warn in every environment; data can make them deny. A waiver naming the
#   license (e.g. GPL-3.0) waives it.
package gate.promotion.licenses

import rego.v1

import data.gate.lib.findings

# METADATA
# title: License at a blocking severity
# description: A license whose severity the environment denies (none by default), with no waiver.
# custom:
#   rule_id: licenses.severity
#   severity: high
#   solution: Replace the package with one under an acceptable license, or have legal approve a waiver.
deny contains result if {
	some finding in findings.blocking("license", "licenses")
	result := {
		"msg": message(finding),
		"rule": "licenses.severity",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution,
	}
}

# METADATA
# title: License at a warning severity
# description: >-
#   A license whose severity the environment warns on (by default critical and high: Trivy's
#   forbidden and restricted classes), with no waiver.
# custom:
#   rule_id: licenses.severity_warning
#   severity: medium
#   solution: Check the license with legal; replace the package, or record their approval as a waiver.
warn contains result if {
	some finding in findings.warning("license", "licenses")
	result := {
		"msg": message(finding),
		"rule": "licenses.severity_warning",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution,
	}
}

# "high-risk license GPL-3.0: bash is licensed GPL-3.0 (restricted)"
message(finding) := sprintf("%s-risk license %s: %s", [
	finding.severity,
	finding.rule,
	object.get(finding, "message", object.get(finding, "title", finding.rule)),
])

solution := "Check the license with legal; replace the package, or record their approval as a waiver naming the license"
