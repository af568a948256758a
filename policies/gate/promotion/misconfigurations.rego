# METADATA
# title: Misconfigurations
# description: >-
#   Misconfigurations Trivy found in Dockerfiles, Kubernetes manifests, Terraform and the like,
#   judged by severity: critical and high block promotion in every environment. A waiver naming
#   the check id (e.g. DS-0002) waives it.
package gate.promotion.misconfigurations

import rego.v1

import data.gate.lib.findings

# METADATA
# title: Misconfiguration at a blocking severity
# description: A misconfiguration whose severity the environment denies, with no waiver.
# custom:
#   rule_id: misconfigurations.severity
#   severity: high
#   solution: Fix the configuration as the check's resolution says, or waive the check with a reason and an expiry.
deny contains result if {
	some finding in findings.blocking("misconfiguration", "misconfigurations")
	result := {
		"msg": message(finding),
		"rule": "misconfigurations.severity",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution(finding),
	}
}

# METADATA
# title: Misconfiguration at a warning severity
# description: A misconfiguration whose severity the environment warns on (none by default), with no waiver.
# custom:
#   rule_id: misconfigurations.severity_warning
#   severity: medium
#   solution: Fix the configuration as the check's resolution says.
warn contains result if {
	some finding in findings.warning("misconfiguration", "misconfigurations")
	result := {
		"msg": message(finding),
		"rule": "misconfigurations.severity_warning",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution(finding),
	}
}

# "high misconfiguration DS-0002 in Dockerfile: Image user should not be 'root'"
message(finding) := sprintf("%s misconfiguration %s in %s: %s", [
	findings.severity_text(finding.severity),
	finding.rule,
	findings.location_text(finding),
	object.get(finding, "title", finding.rule),
])

# Trivy's own resolution when the report has one.
solution(finding) := resolution if {
	resolution := finding.raw.Resolution
	findings.non_empty_string(resolution)
}

solution(finding) := sprintf(
	"Fix the configuration as check %s describes, or waive %s with a reason and an expiry",
	[finding.rule, finding.rule],
) if not has_resolution(finding)

has_resolution(finding) if findings.non_empty_string(finding.raw.Resolution)
