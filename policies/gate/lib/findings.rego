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

result_severities_map := {s: s | some s in result_severities}

# A result carries its finding's severity; `unknown` counts as high (fail closed).
result_severity(severity) := severity if severity in result_severities
else := "high"

# Where the findings of each kind are in input.findings, found in one pass: a rule about one kind
# visits only those findings instead of every finding (tens of thousands in a large image).
positions[kind] contains i if {
	some i, finding in input.findings
	kind := finding.kind
}

# Findings of `kind` at a severity the setting `key` denies, not waived.
blocking(kind, key) := {finding |
	some i in positions[kind]
	finding := input.findings[i]
	finding.severity in settings[key].deny
	not waivers.waived(finding)
}

# Findings of `kind` at a severity the setting `key` warns on (and does not deny), not waived.
warning(kind, key) := {finding |
	some i in positions[kind]
	finding := input.findings[i]
	severity := finding.severity
	severity in settings[key].warn
	not denies(key, severity)
	not waivers.waived(finding)
}

denies(key, severity) if severity in settings[key].deny

# Text helpers. Each is one function with an `else` chain over plain values: these run once per
# finding, and regorus evaluates multi-body functions with negations far more slowly.

# The value of a string field, or "" when it is missing or not a string.
string_field(obj, key) := value if {
	value := obj[key]
	is_string(value)
} else := ""

# The value of an object field, or {} when it is missing or not an object.
object_field(obj, key) := value if {
	value := obj[key]
	is_object(value)
} else := {}

# The finding's package name, or "".
package_name(finding) := string_field(object_field(finding, "package"), "name")

# "minimist 0.2.1", "minimist", or "an unnamed package".
package_text(finding) := package_phrase(package_name(finding), string_field(object_field(finding, "package"), "version"))

package_phrase(name, version) := concat(" ", [name, version]) if {
	name != ""
	version != ""
} else := name if name != ""
else := "an unnamed package"

# "deploy.sh line 3", "Dockerfile", or "an unknown location".
location_text(finding) := location_phrase(string_field(location, "path"), object.get(location, "start_line", 0)) if {
	location := object_field(finding, "location")
}

location_phrase(path, line) := sprintf("%s line %v", [path, line]) if {
	path != ""
	is_number(line)
	line > 0
} else := path if path != ""
else := "an unknown location"

non_empty_string(value) if {
	is_string(value)
	value != ""
}

# A severity as messages show it: "critical", or "unknown-severity".
severity_text(severity) := object.get(severity_words, severity, severity)

severity_words := {"unknown": "unknown-severity"}
