# METADATA
# title: Effective settings
# description: >-
#   The settings in force for input.environment: the shipped entry for that environment in
#   data.gate.config.thresholds (or its "default" entry, merged with data.thresholds.default, for an
#   environment the shipped data does not name), then data.thresholds[<environment>] from --data
#   merged over it key by key (object.union: nested mappings merge, lists and scalars replace).
#   `problems` lists every setting or input field that is missing or of the wrong type; the
#   settings.invalid rule turns each into a deny, so a typo can never loosen the gate.
package gate.lib.config

import rego.v1

# Severities a finding can have (schemas/finding.schema.json).
severities := {"critical", "high", "medium", "low", "info", "unknown"}

# Settings that hold {"deny": [severities], "warn": [severities]} for one kind of finding.
severity_settings := {"vulnerabilities", "misconfigurations", "secrets", "licenses"}

# What a rule that is not about severities does with what it finds.
actions := {"deny", "warn", "off"}

known_settings := {"required_scanners", "min_line_coverage", "quality_gate", "waiver_warning_days"} | severity_settings

default shipped := {}

shipped := data.gate.config.thresholds if is_object(data.gate.config.thresholds)

default environment := ""

environment := input.environment if is_string(input.environment)

default overrides := {}

overrides := data.thresholds if is_object(data.thresholds)

# The mapping thresholds[name], or {} when there is none (or it is not a mapping: see problems).
entry(thresholds, name) := value if {
	value := thresholds[name]
	is_object(value)
}

entry(thresholds, name) := {} if not is_object(object.get(thresholds, name, null))

# Whether the shipped data has an entry of its own for the environment.
named if is_object(shipped[environment])

base := entry(shipped, environment) if named

base := object.union(entry(shipped, "default"), entry(overrides, "default")) if not named

default settings := {}

settings := object.union(base, entry(overrides, environment))

default waiver_warning_days := 14

waiver_warning_days := settings.waiver_warning_days if is_number(settings.waiver_warning_days)

waiver_warning_days := data.gate.config.waiver_warning_days if {
	not is_number(object.get(settings, "waiver_warning_days", null))
	is_number(data.gate.config.waiver_warning_days)
}

# RFC 3339 as Go and regorus parse it; checked first so a malformed timestamp is simply not a time
# (a parse error aborts evaluation in regorus and in OPA with strict builtin errors).
rfc3339 := `^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$`

# Nanoseconds since the epoch of an RFC 3339 timestamp; undefined for anything else.
time_ns(value) := time.parse_rfc3339_ns(value) if {
	is_string(value)
	regex.match(rfc3339, value)
}

# The evaluation time; undefined without a valid input.now, and then nothing is waived.
now_ns := time_ns(input.now)

problems contains "input.environment is missing: the environment decides which thresholds apply" if {
	environment == ""
}

problems contains "input.now is missing or not an RFC 3339 timestamp: waivers cannot be checked" if {
	not now_ns
}

problems contains "data.gate.config.thresholds is missing from the policy bundle" if not shipped_present

shipped_present if is_object(data.gate.config.thresholds)

problems contains msg if {
	type_name(data.thresholds) != "object"
	msg := sprintf("data.thresholds must map environment names to settings, not be a %s", [type_name(data.thresholds)])
}

problems contains msg if {
	some name in {environment, "default"}
	value := overrides[name]
	not is_object(value)
	msg := sprintf("data.thresholds.%s must be a mapping of settings, not a %s", [name, type_name(value)])
}

problems contains msg if {
	some key in object.keys(settings)
	not key in known_settings
	msg := sprintf(
		"unknown setting %s for environment %s (known: %s)",
		[key, environment, concat(", ", sort(known_settings))],
	)
}

problems contains msg if {
	not string_list(object.get(settings, "required_scanners", null))
	msg := sprintf("setting required_scanners for environment %s must be a list of scanner names", [environment])
}

problems contains msg if {
	not rate_or_null(object.get(settings, "min_line_coverage", "missing"))
	msg := sprintf("setting min_line_coverage for environment %s must be a number from 0 to 1, or null for no minimum", [environment])
}

problems contains msg if {
	some key in severity_settings
	not severity_group(object.get(settings, key, null))
	msg := sprintf(
		"setting %s for environment %s must be {\"deny\": [...], \"warn\": [...]} listing severities from %s",
		[key, environment, concat(", ", sort(severities))],
	)
}

problems contains msg if {
	not object.get(settings, "quality_gate", null) in actions
	msg := sprintf("setting quality_gate for environment %s must be one of deny, warn, off", [environment])
}

problems contains msg if {
	value := settings.waiver_warning_days
	not non_negative(value)
	msg := sprintf("setting waiver_warning_days for environment %s must be a number of days (0 or more)", [environment])
}

string_list(value) if {
	is_array(value)
	every item in value {
		is_string(item)
	}
}

rate_or_null(value) if value == null

rate_or_null(value) if {
	is_number(value)
	value >= 0
	value <= 1
}

non_negative(value) if {
	is_number(value)
	value >= 0
}

severity_group(group) if {
	is_object(group)
	is_array(group.deny)
	is_array(group.warn)
	every key, listed in group {
		key in {"deny", "warn"}
		every severity in listed {
			severity in severities
		}
	}
}
