# METADATA
# title: Secrets
# description: >-
#   Credentials, keys and tokens found in the image or the repository (Trivy's secret scanner).
#   By default any secret blocks promotion in every environment, whatever its severity. A waiver
#   naming the secret rule (e.g. a test fixture's private key) waives it.
package gate.promotion.secrets

import rego.v1

import data.gate.lib.findings

# METADATA
# title: Secret found
# description: >-
#   A secret at a severity the environment denies (by default: any), with no waiver.
# custom:
#   rule_id: secrets.exposed
#   severity: high
#   solution: >-
#     Remove the secret from the source and from every image layer, rotate the credential, and
#     rebuild; load secrets at run time instead.
deny contains result if {
	some finding in findings.blocking("secret", "secrets")
	result := {
		"msg": message(finding),
		"rule": "secrets.exposed",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution,
	}
}

# METADATA
# title: Secret found (warning)
# description: >-
#   A secret at a severity the environment only warns on (none by default), with no waiver.
# custom:
#   rule_id: secrets.exposed_warning
#   severity: medium
#   solution: Remove the secret from the source and the image, and rotate the credential.
warn contains result if {
	some finding in findings.warning("secret", "secrets")
	result := {
		"msg": message(finding),
		"rule": "secrets.exposed_warning",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution,
	}
}

# "critical secret aws-access-key-id (AWS Access Key ID) in deploy.sh line 3"
message(finding) := sprintf("%s secret %s (%s) in %s", [
	findings.severity_text(finding.severity),
	finding.rule,
	object.get(finding, "title", finding.rule),
	findings.location_text(finding),
])

solution := concat(" ", [
	"Remove the secret from the source and from every image layer, rotate the credential,",
	"and rebuild; if it is a harmless test value, waive the secret rule with a reason and an expiry",
])
