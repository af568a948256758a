package gate.promotion.settings_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.settings

test_shipped_settings_are_valid_in_every_environment if {
	every env in ["prod", "staging", "dev"] {
		count(settings.deny) == 0 with input as fx.in_env(env)
	}
}

test_undeclared_environment_is_denied if {
	doc := fx.in_env("prd")
	denies := settings.deny with input as doc
	count(denies) == 1
	some r in denies
	r.rule == "settings.invalid"
	r.msg == "environment \"prd\" is not declared in the policy data; declared: dev, prod, staging"
}

test_missing_environment_is_denied if {
	doc := object.remove(fx.clean, ["environment"])
	some r in settings.deny with input as doc
	r.rule == "settings.invalid"
	r.msg == "input.environment is missing: the environment decides which thresholds apply"
}

test_missing_or_malformed_now_is_denied if {
	expected := "input.now is missing or not an RFC 3339 timestamp: waivers cannot be checked"
	some r in settings.deny with input as object.remove(fx.clean, ["now"])
	r.msg == expected
	some s in settings.deny with input as object.union(fx.clean, {"now": "22/01/2027"})
	s.msg == expected
}

test_unknown_setting_is_denied if {
	overrides := {"prod": {"min_line_coverge": 0.9}}
	some r in settings.deny with input as fx.clean with data.thresholds as overrides
	startswith(r.msg, "unknown setting min_line_coverge for environment prod (known: ")
}

test_wrongly_typed_settings_are_denied if {
	overrides := {"prod": {
		"min_line_coverage": "0.8",
		"required_scanners": "trivy",
		"vulnerabilities": {"deny": ["critical", "hihg"]},
		"quality_gate": "block",
		"waiver_warning_days": -1,
	}}
	denies := settings.deny with input as fx.clean with data.thresholds as overrides
	count(denies) == 5
	found := {r.msg | some r in denies}
	"setting min_line_coverage for environment prod must be a number from 0 to 1, or null for no minimum" in found
	"setting required_scanners for environment prod must be a list of scanner names" in found
	"setting quality_gate for environment prod must be one of deny, warn, off" in found
	"setting waiver_warning_days for environment prod must be a number of days (0 or more)" in found
}

test_coverage_minimum_over_one_is_denied if {
	overrides := {"staging": {"min_line_coverage": 80}}
	count(settings.deny) == 1 with input as fx.in_env("staging") with data.thresholds as overrides
}

test_thresholds_that_are_not_a_mapping_are_denied if {
	some r in settings.deny with input as fx.clean with data.thresholds as ["prod"]
	r.msg == "data.thresholds must map environment names to settings, not be a array"
	some s in settings.deny with input as fx.clean with data.thresholds as {"prod": true}
	s.msg == "data.thresholds.prod must be a mapping of settings, not a boolean"
}

test_missing_shipped_config_is_denied if {
	denies := settings.deny with input as fx.clean with data.gate.config as {}
	some r in denies
	r.msg == "data.gate.config.thresholds is missing from the policy bundle"
	some n in denies
	n.msg == "no environment is declared: data.gate.config.environments (bundle) or data.environments (--data)"
}
