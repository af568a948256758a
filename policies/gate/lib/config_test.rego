package gate.lib.config_test

import rego.v1

import data.gate.lib.config
import data.gate.lib.fixtures_test as fx

test_prod_uses_its_shipped_entry if {
	s := config.settings with input as fx.clean
	s.min_line_coverage == 0.8
	s.required_scanners == ["trivy", "coverage"]
	s.vulnerabilities.deny == ["critical", "high", "unknown"]
}

test_environment_not_named_uses_the_default_entry if {
	s := config.settings with input as fx.in_env("qa")
	s.min_line_coverage == 0.6
	s.required_scanners == ["trivy"]
	s.vulnerabilities == {"deny": ["critical"], "warn": ["high", "unknown"]}
}

test_environment_override_merges_key_by_key if {
	overrides := {"prod": {"min_line_coverage": 0.9, "vulnerabilities": {"warn": ["medium"]}}}
	s := config.settings with input as fx.clean with data.thresholds as overrides
	s.min_line_coverage == 0.9
	s.vulnerabilities == {"deny": ["critical", "high", "unknown"], "warn": ["medium"]}
	s.required_scanners == ["trivy", "coverage"]
}

test_default_override_applies_to_unnamed_environments_only if {
	overrides := {"default": {"min_line_coverage": 0.7}}
	s := config.settings with input as fx.in_env("qa") with data.thresholds as overrides
	s.min_line_coverage == 0.7
	p := config.settings with input as fx.clean with data.thresholds as overrides
	p.min_line_coverage == 0.8
}

test_environment_override_wins_over_default_override if {
	overrides := {"default": {"min_line_coverage": 0.7}, "qa": {"min_line_coverage": 0.75}}
	s := config.settings with input as fx.in_env("qa") with data.thresholds as overrides
	s.min_line_coverage == 0.75
}

test_override_that_is_not_a_mapping_is_ignored_and_reported if {
	s := config.settings with input as fx.clean with data.thresholds as {"prod": 0.5}
	s.min_line_coverage == 0.8
	problems := config.problems with input as fx.clean with data.thresholds as {"prod": 0.5}
	problems == {"data.thresholds.prod must be a mapping of settings, not a number"}
}

test_shipped_settings_have_no_problems if {
	count(config.problems) == 0 with input as fx.clean
	count(config.problems) == 0 with input as fx.in_env("staging")
}

test_null_coverage_minimum_is_valid if {
	overrides := {"prod": {"min_line_coverage": null}}
	count(config.problems) == 0 with input as fx.clean with data.thresholds as overrides
}

test_settings_removed_by_null_are_reported if {
	overrides := {"prod": {"vulnerabilities": null, "required_scanners": null}}
	problems := config.problems with input as fx.clean with data.thresholds as overrides
	count(problems) == 2
}

test_waiver_warning_days_default_and_override if {
	config.waiver_warning_days == 14 with input as fx.clean
	config.waiver_warning_days == 3 with input as fx.clean with data.thresholds as {"prod": {"waiver_warning_days": 3}}
}

test_time_ns_parses_rfc3339_only if {
	config.time_ns("2027-01-22T00:00:00Z") == 1800576000000000000
	config.time_ns("2027-01-22T01:00:00+01:00") == 1800576000000000000
	config.time_ns("2027-01-22T00:00:00.5Z") == 1800576000500000000
	not config.time_ns("2027-01-22")
	not config.time_ns("next tuesday")
	not config.time_ns(1800576000)
}

test_now_comes_from_input if {
	with_now := fx.clean
	without_now := object.remove(fx.clean, ["now"])
	config.now_ns == 1800576000000000000 with input as with_now
	not config.now_ns with input as without_now
}

test_environment_defaults_to_empty if {
	config.environment == "" with input as object.remove(fx.clean, ["environment"])
	config.environment == "" with input as object.union(fx.clean, {"environment": 7})
}
