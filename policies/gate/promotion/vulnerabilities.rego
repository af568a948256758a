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
	some finding in findings.blocking("vulnerability", "vulnerabilities")
	result := {
		"msg": message(finding),
		"rule": "vulnerabilities.severity",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution(finding),
	}
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
	some finding in findings.warning("vulnerability", "vulnerabilities")
	result := {
		"msg": message(finding),
		"rule": "vulnerabilities.severity_warning",
		"severity": findings.result_severity(finding.severity),
		"finding_ids": [finding.id],
		"solution": solution(finding),
	}
}

# "critical vulnerability CVE-2021-44906 in minimist 1.2.5 (juice-shop/node_modules/minimist/package.json): fixed in 1.2.6"
message(finding) := sprintf("%s vulnerability %s in %s%s: %s", [
	findings.severity_text(finding.severity),
	finding.rule,
	findings.package_text(finding),
	path_text(finding),
	fix_text(finding),
])

# Where the package was found, for language packages (Trivy reports it; OS packages have none).
path_text(finding) := sprintf(" (%s)", [finding["package"].path]) if has_path(finding)

path_text(finding) := "" if not has_path(finding)

has_path(finding) if findings.non_empty_string(finding["package"].path)

fixed_version(finding) := version if {
	version := finding["package"].fixed_version
	findings.non_empty_string(version)
}

fix_text(finding) := sprintf("fixed in %s", [fixed_version(finding)])

fix_text(finding) := "no fixed version available" if not fixed_version(finding)

solution(finding) := sprintf(
	"Upgrade %s to %s or later and rebuild the image, or waive %s with a reason and an expiry",
	[findings.package_text(finding), fixed_version(finding), finding.rule],
)

solution(finding) := sprintf(
	"No fixed version of %s yet: remove or replace it, or assess %s and waive it with a reason and an expiry",
	[findings.package_text(finding), finding.rule],
) if not fixed_version(finding)
