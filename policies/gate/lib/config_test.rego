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

test_staging_inherits_the_dev_settings if {
	s := config.settings with input as fx.in_env("staging")
	d := config.settings with input as fx.in_env("dev")
	s == d
	s.min_line_coverage == 0.6
	s.required_scanners == ["trivy"]
	s.vulnerabilities == {"deny": ["critical"], "warn": ["high", "unknown"]}
}

test_lineage_is_base_first if {
	config.lineage == ["dev", "staging"] with input as fx.in_env("staging")
	config.lineage == ["prod"] with input as fx.clean
	config.lineage == [] with input as fx.in_env("prd")
}

test_an_undeclared_environment_has_no_settings_and_one_problem if {
	every name in ["prd", "qa", "Prod", "prod ", "default"] {
		doc := fx.in_env(name)
		config.settings == {} with input as doc
		problems := config.problems with input as doc
		problems == {sprintf("environment \"%s\" is not declared in the policy data; declared: dev, prod, staging", [name])}
	}
}

test_environment_override_merges_key_by_key if {
	overrides := {"prod": {"min_line_coverage": 0.9, "vulnerabilities": {"warn": ["medium"]}}}
	s := config.settings with input as fx.clean with data.thresholds as overrides
	s.min_line_coverage == 0.9
	s.vulnerabilities == {"deny": ["critical", "high", "unknown"], "warn": ["medium"]}
	s.required_scanners == ["trivy", "coverage"]
}

test_an_override_of_the_base_reaches_what_inherits_it if {
	overrides := {"dev": {"min_line_coverage": 0.7}}
	s := config.settings with input as fx.in_env("staging") with data.thresholds as overrides
	s.min_line_coverage == 0.7
	p := config.settings with input as fx.clean with data.thresholds as overrides
	p.min_line_coverage == 0.8
}

test_an_override_of_the_heir_wins_over_its_base if {
	overrides := {"dev": {"min_line_coverage": 0.7}, "staging": {"min_line_coverage": 0.75}}
	s := config.settings with input as fx.in_env("staging") with data.thresholds as overrides
	s.min_line_coverage == 0.75
	d := config.settings with input as fx.in_env("dev") with data.thresholds as overrides
	d.min_line_coverage == 0.7
}

test_data_declares_more_environments if {
	declared := {"qa": {"inherits": "staging"}}
	overrides := {"staging": {"quality_gate": "warn"}, "qa": {"min_line_coverage": 0.5}}
	doc := fx.in_env("qa")
	s := config.settings with input as doc with data.environments as declared with data.thresholds as overrides
	s.min_line_coverage == 0.5
	s.quality_gate == "warn"
	s.required_scanners == ["trivy"]
	config.lineage == ["dev", "staging", "qa"] with input as doc with data.environments as declared
	count(config.problems) == 0 with input as doc with data.environments as declared with data.thresholds as overrides
}

test_data_may_redeclare_a_base if {
	declared := {"staging": {"inherits": "prod"}}
	doc := fx.in_env("staging")
	s := config.settings with input as doc with data.environments as declared
	s.min_line_coverage == 0.8
}

test_settings_for_an_undeclared_environment_are_a_problem if {
	doc := fx.clean
	problems := config.problems with input as doc with data.thresholds as {"prd": {"min_line_coverage": 0.9}}
	problems == {"data.thresholds.prd names an environment that is not declared (declared: dev, prod, staging)"}
	defaults := config.problems with input as doc with data.thresholds as {"default": {"min_line_coverage": 0.9}}
	defaults == {"data.thresholds.default names an environment that is not declared (declared: dev, prod, staging)"}
}

test_malformed_declarations_are_problems if {
	doc := fx.clean
	cases := [
		[{"qa": {"inherits": "nowhere"}}, "environment qa inherits nowhere, which is not a declared environment"],
		[{"qa": {"inherit": "dev"}}, "environment qa: unknown key inherit (known: description, inherits)"],
		[{"qa": "dev"}, "environment qa: its declaration must be a mapping such as {\"inherits\": \"dev\"}, not a string"],
		[{"QA": {}}, "environment name \"QA\": use lowercase letters, digits, '-', '_' or '.'"],
		[["qa"], "data.environments must map environment names to declarations, not be a array"],
	]
	every c in cases {
		declared := c[0]
		problems := config.problems with input as doc with data.environments as declared
		c[1] in problems
	}
}

test_an_inheritance_cycle_is_a_problem if {
	declared := {"a": {"inherits": "b"}, "b": {"inherits": "a"}}
	doc := fx.in_env("a")
	problems := config.problems with input as doc with data.environments as declared
	"environment a inherits from itself (through b)" in problems
	"environment b inherits from itself (through a)" in problems
}

test_no_declaration_at_all_is_a_problem if {
	doc := fx.clean
	problems := config.problems with input as doc with data.gate.config.environments as {}
	"no environment is declared: data.gate.config.environments (bundle) or data.environments (--data)" in problems
	listed := config.problems with input as doc with data.gate.config.environments as ["prod"]
	"data.gate.config.environments must map environment names to declarations, not be a array" in listed
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
	count(config.problems) == 0 with input as fx.in_env("dev")
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

test_unfixed_and_max_days_fixable_must_be_well_typed if {
	doc := {"environment": "prod", "now": "2027-01-22T00:00:00Z"}
	bad := {"prod": {"unfixed": "off", "max_days_fixable": "30"}}
	problems := config.problems with input as doc with data.thresholds as bad
	"setting unfixed for environment prod must be one of deny, warn" in problems
	"setting max_days_fixable for environment prod must be a number of days (0 or more), or null for no limit" in problems
	good := {"prod": {"unfixed": "warn", "max_days_fixable": 30}}
	count(config.problems) == 0 with input as doc with data.thresholds as good
}

test_first_seen_fixable_must_hold_rfc3339_times if {
	doc := {"environment": "prod", "now": "2027-01-22T00:00:00Z", "first_seen_fixable": {"f1": "yesterday"}}
	"input.first_seen_fixable.f1 is not an RFC 3339 timestamp" in config.problems with input as doc
}

test_first_seen_fixable_must_be_a_mapping if {
	doc := {"environment": "prod", "now": "2027-01-22T00:00:00Z", "first_seen_fixable": ["f1"]}
	"input.first_seen_fixable must map finding ids to RFC 3339 times, not be a array" in config.problems with input as doc
}
