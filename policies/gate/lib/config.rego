# METADATA
# title: Effective settings
# description: >-
#   The settings in force for input.environment, which must be a declared environment:
#   data.gate.config.environments (shipped: dev, staging inheriting dev, prod) with
#   data.environments from --data merged over it. A declaration may name the environment it
#   `inherits` from; the settings are the shipped data.gate.config.thresholds entry and the
#   data.thresholds entry from --data of each environment in that line, base first, each merged
#   over the one before key by key (object.union: nested mappings merge, lists and scalars
#   replace). There is no fallback: an undeclared environment has no settings. `problems` lists
#   every setting, declaration or input field that is missing or of the wrong type; the
#   settings.invalid rule turns each into a deny, so a typo can never loosen the gate.
package gate.lib.config

import rego.v1

# Severities a finding can have (schemas/finding.schema.json).
severities := {"critical", "high", "medium", "low", "info", "unknown"}

# Settings that hold {"deny": [severities], "warn": [severities]} for one kind of finding.
severity_settings := {"vulnerabilities", "misconfigurations", "secrets", "licenses"}

# What a rule that is not about severities does with what it finds.
actions := {"deny", "warn", "off"}

known_settings := {
	"required_scanners", "min_line_coverage", "quality_gate", "waiver_warning_days",
	"unfixed", "max_days_fixable",
	"platforms",
} | severity_settings

# What the vulnerabilities rules do with a finding that has no fixed version (deny: as its severity says).
unfixed_actions := {"deny", "warn"}

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

# --- declared environments -------------------------------------------------------------------

# An environment name, as gate's CLI accepts it.
name_pattern := `^[a-z0-9][a-z0-9_.-]{0,62}$`

# What a declaration may say.
declaration_keys := {"inherits", "description"}

default shipped_declarations := {}

shipped_declarations := data.gate.config.environments if is_object(data.gate.config.environments)

default added_declarations := {}

added_declarations := data.environments if is_object(data.environments)

# Every declaration: the shipped ones with --data's merged over them key by key.
declarations := object.union(shipped_declarations, added_declarations)

# The names declared well enough to have settings (a mapping each; see problems for the rest).
declared contains name if {
	some name, declaration in declarations
	is_object(declaration)
}

# Each declared environment -> [the environment it inherits from] (or []), as graph.reachable wants.
parents[name] := [base |
	some base in [object.get(declarations[name], "inherits", null)]
	is_string(base)
	base in declared
] if {
	some name in declared
}

# Whether input.environment is declared.
declared_environment if environment in declared

# input.environment and what it inherits from, base first. graph.reachable gives the set; each
# member reaches fewer environments the nearer it is to the base, which orders the line.
lineage := [pair[1] | some pair in sort([[count(graph.reachable(parents, [name])), name] |
	some name in graph.reachable(parents, [environment])
])] if declared_environment

default lineage := []

default settings := {}

settings := object.union_n([object.union(entry(shipped, name), entry(overrides, name)) | some name in lineage])

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

# input.first_seen_fixable (set by gate evaluate): finding id -> RFC 3339 time. A malformed one
# cannot be judged, so it denies rather than let a fix look new.
problems contains msg if {
	value := input.first_seen_fixable
	not is_object(value)
	msg := sprintf("input.first_seen_fixable must map finding ids to RFC 3339 times, not be a %s", [type_name(value)])
}

problems contains msg if {
	some id, seen in input.first_seen_fixable
	not time_ns(seen)
	msg := sprintf("input.first_seen_fixable.%v is not an RFC 3339 timestamp", [id])
}

shipped_present if is_object(data.gate.config.thresholds)

problems contains msg if {
	type_name(data.thresholds) != "object"
	msg := sprintf("data.thresholds must map environment names to settings, not be a %s", [type_name(data.thresholds)])
}

problems contains msg if {
	some name, value in overrides
	not is_object(value)
	msg := sprintf("data.thresholds.%s must be a mapping of settings, not a %s", [name, type_name(value)])
}

problems contains msg if {
	environment != ""
	not declared_environment
	msg := sprintf(
		"environment \"%s\" is not declared in the policy data; declared: %s",
		[environment, concat(", ", sort(declared))],
	)
}

# Problems with the declarations themselves (admission shares these).
problems contains msg if some msg in declaration_problems

declaration_problems contains "no environment is declared: data.gate.config.environments (bundle) or data.environments (--data)" if {
	count(declared) == 0
}

declaration_problems contains msg if {
	value := data.gate.config.environments
	not is_object(value)
	msg := sprintf("data.gate.config.environments must map environment names to declarations, not be a %s", [type_name(value)])
}

declaration_problems contains msg if {
	value := data.environments
	not is_object(value)
	msg := sprintf("data.environments must map environment names to declarations, not be a %s", [type_name(value)])
}

declaration_problems contains msg if {
	some name, declaration in declarations
	not is_object(declaration)
	msg := sprintf("environment %v: its declaration must be a mapping such as {\"inherits\": \"dev\"}, not a %s", [name, type_name(declaration)])
}

declaration_problems contains msg if {
	some name in declared
	not regex.match(name_pattern, name)
	msg := sprintf("environment name \"%s\": use lowercase letters, digits, '-', '_' or '.'", [name])
}

declaration_problems contains msg if {
	some name in declared
	some key in object.keys(declarations[name])
	not key in declaration_keys
	msg := sprintf("environment %v: unknown key %v (known: %s)", [name, key, concat(", ", sort(declaration_keys))])
}

declaration_problems contains msg if {
	some name in declared
	base := object.get(declarations[name], "inherits", null)
	base != null
	not base in declared
	msg := sprintf("environment %v inherits %v, which is not a declared environment", [name, base])
}

declaration_problems contains msg if {
	some name in declared
	some base in parents[name]
	name in graph.reachable(parents, [base])
	msg := sprintf("environment %v inherits from itself (through %v)", [name, base])
}

# Settings for a name nobody declared would never apply: a typo there must not pass unnoticed.
declaration_problems contains msg if {
	some source in [["data.gate.config.thresholds", shipped], ["data.thresholds", overrides]]
	some name in object.keys(source[1])
	not name in declared
	msg := sprintf(
		"%s.%v names an environment that is not declared (declared: %s)",
		[source[0], name, concat(", ", sort(declared))],
	)
}

problems contains msg if {
	declared_environment
	some key in object.keys(settings)
	not key in known_settings
	msg := sprintf(
		"unknown setting %s for environment %s (known: %s)",
		[key, environment, concat(", ", sort(known_settings))],
	)
}

problems contains msg if {
	declared_environment
	not string_list(object.get(settings, "required_scanners", null))
	msg := sprintf("setting required_scanners for environment %s must be a list of scanner names", [environment])
}

problems contains msg if {
	declared_environment
	not rate_or_null(object.get(settings, "min_line_coverage", "missing"))
	msg := sprintf("setting min_line_coverage for environment %s must be a number from 0 to 1, or null for no minimum", [environment])
}

problems contains msg if {
	declared_environment
	some key in severity_settings
	not severity_group(object.get(settings, key, null))
	msg := sprintf(
		"setting %s for environment %s must be {\"deny\": [...], \"warn\": [...]} listing severities from %s",
		[key, environment, concat(", ", sort(severities))],
	)
}

problems contains msg if {
	declared_environment
	not object.get(settings, "quality_gate", null) in actions
	msg := sprintf("setting quality_gate for environment %s must be one of deny, warn, off", [environment])
}

problems contains msg if {
	declared_environment
	not object.get(settings, "unfixed", "deny") in unfixed_actions
	msg := sprintf("setting unfixed for environment %s must be one of deny, warn", [environment])
}

problems contains msg if {
	declared_environment
	value := object.get(settings, "max_days_fixable", null)
	value != null
	not non_negative(value)
	msg := sprintf("setting max_days_fixable for environment %s must be a number of days (0 or more), or null for no limit", [environment])
}

# platforms: {"required": ["os/architecture[/variant]", ...]}, spelled as gate normalises platforms.
problems contains msg if {
	declared_environment
	value := object.get(settings, "platforms", {"required": []})
	not platform_setting(value)
	msg := sprintf(
		"setting platforms for environment %s must be {\"required\": [...]} listing platforms such as linux/amd64, linux/arm64, linux/arm/v7",
		[environment],
	)
}

problems contains msg if {
	declared_environment
	some platform in required_platforms
	is_string(platform)
	some spelling in platform_spellings
	regex.match(spelling[0], platform)
	msg := sprintf(
		"setting platforms.required for environment %s: write %s as %s (gate normalises platforms as containerd does)",
		[environment, platform, replace(platform, spelling[1], spelling[2])],
	)
}

# The platforms the environment requires reports of (setting platforms.required); [] when unset or malformed.
default required_platforms := []

required_platforms := value.required if {
	value := settings.platforms
	is_object(value)
	is_array(value.required)
}

# A platform: os/architecture[/variant] in lowercase words.
platform_pattern := `^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$`

# Spellings gate normalises away (as containerd does), so a required one could never be covered.
# [pattern, what to replace, by what].
platform_spellings := [
	[`/arm64/v8$`, "/arm64/v8", "/arm64"],
	[`/amd64/v1$`, "/amd64/v1", "/amd64"],
	[`/x86_64(/|$)`, "/x86_64", "/amd64"],
	[`/x86-64(/|$)`, "/x86-64", "/amd64"],
	[`/aarch64(/|$)`, "/aarch64", "/arm64"],
	[`/arm$`, "/arm", "/arm/v7"],
]

platform_setting(value) if {
	is_object(value)
	object.keys(value) == {"required"}
	is_array(value.required)
	every platform in value.required {
		is_string(platform)
		regex.match(platform_pattern, platform)
	}
}

problems contains msg if {
	declared_environment
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
