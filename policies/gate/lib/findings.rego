# METADATA
# title: Finding helpers
# description: >-
#   Selecting findings by kind and by the severities the effective settings deny or warn on
#   (waived findings left out), and the phrases messages are built from.
package gate.lib.findings

import rego.v1

import data.gate.lib.config
import data.gate.lib.waivers

# The effective settings. Functions below refer to this local copy, never to config.settings
# directly (regorus 0.x loses an imported rule inside a function when the caller evaluated a rule
# of this package first).
settings := config.settings

# Severities a deny or warn result may carry.
result_severities := {"critical", "high", "medium", "low", "info"}

# A result carries its finding's severity; `unknown` counts as high (fail closed).
result_severity(severity) := severity if severity in result_severities

result_severity(severity) := "high" if not severity in result_severities

# Findings of `kind` at a severity the setting `key` denies, not waived.
blocking(kind, key) := {finding |
	some finding in input.findings
	finding.kind == kind
	finding.severity in settings[key].deny
	not waivers.waived(finding)
}

# Findings of `kind` at a severity the setting `key` warns on (and does not deny), not waived.
warning(kind, key) := {finding |
	some finding in input.findings
	finding.kind == kind
	severity := finding.severity
	severity in settings[key].warn
	not denies(key, severity)
	not waivers.waived(finding)
}

denies(key, severity) if severity in settings[key].deny

# The finding's package name, when it has one.
package_name(finding) := name if {
	pkg := finding["package"]
	is_object(pkg)
	name := pkg.name
	non_empty_string(name)
}

# "minimist 0.2.1", "minimist", or "an unnamed package".
package_text(finding) := concat(" ", [name, version]) if {
	name := package_name(finding)
	version := finding["package"].version
	non_empty_string(version)
}

package_text(finding) := name if {
	name := package_name(finding)
	not has_version(finding)
}

has_version(finding) if non_empty_string(finding["package"].version)

package_text(finding) := "an unnamed package" if not package_name(finding)

# "deploy.sh line 3", "Dockerfile", or "an unknown location".
location_text(finding) := sprintf("%s line %v", [loc.path, loc.start_line]) if {
	loc := finding.location
	non_empty_string(loc.path)
	loc.start_line > 0
}

location_text(finding) := finding.location.path if {
	not has_line(finding)
	has_path(finding)
}

location_text(finding) := "an unknown location" if not has_path(finding)

has_path(finding) if non_empty_string(finding.location.path)

has_line(finding) if finding.location.start_line > 0

non_empty_string(value) if {
	is_string(value)
	value != ""
}

# A severity as messages show it: "critical", or "unknown-severity".
severity_text(severity) := "unknown-severity" if severity == "unknown"

severity_text(severity) := severity if severity != "unknown"
