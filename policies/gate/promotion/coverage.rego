# METADATA
# title: Test coverage
# description: >-
#   Line coverage from the coverage report (input.metrics.coverage.line_rate, 0 to 1) against the
#   environment's min_line_coverage: 0.80 in prod, 0.60 elsewhere (null: no minimum). A missing
#   coverage report is the scanners.required rule's concern; a report that measured no lines
#   cannot show the minimum is met.
package gate.promotion.coverage

import rego.v1

import data.gate.lib.config

minimum := config.settings.min_line_coverage

required if "coverage" in config.settings.required_scanners

reported if {
	some scanner in input.scanners
	scanner.name == "coverage"
}

reported if input.metrics.coverage

line_rate := rate if {
	rate := input.metrics.coverage.line_rate
	is_number(rate)
}

# METADATA
# title: Line coverage under the minimum
# description: The coverage report's line rate is below the environment's min_line_coverage.
# custom:
#   rule_id: coverage.line_rate
#   severity: medium
#   solution: Add tests for the uncovered code, or lower min_line_coverage for this environment in data.thresholds.
deny contains result if {
	is_number(minimum)
	line_rate < minimum
	result := {
		"msg": sprintf(
			"line coverage %v%% is under the %v%% required in %s",
			[percent(line_rate), percent(minimum), config.environment],
		),
		"rule": "coverage.line_rate",
		"severity": "medium",
		"finding_ids": [],
		"solution": "Add tests for the uncovered code, or lower min_line_coverage for this environment in data.thresholds",
	}
}

# METADATA
# title: Required coverage not measured
# description: >-
#   The environment requires coverage and sets a minimum, but the coverage report has no line rate
#   (it measured no lines), so the minimum cannot be checked.
# custom:
#   rule_id: coverage.not_measured
#   severity: high
#   solution: Make the test run record line coverage for the code in the image, and pass that report.
deny contains result if {
	required
	is_number(minimum)
	reported
	not line_rate
	result := {
		"msg": sprintf(
			"the coverage report has no line rate (no lines measured): line coverage cannot be checked against the %v%% required in %s",
			[percent(minimum), config.environment],
		),
		"rule": "coverage.not_measured",
		"severity": "high",
		"finding_ids": [],
		"solution": "Make the test run record line coverage for the code in the image, and pass that report",
	}
}

# METADATA
# title: Coverage not measured
# description: >-
#   A coverage report was given where coverage is not required, but it has no line rate, so the
#   minimum is not checked.
# custom:
#   rule_id: coverage.not_measured_warning
#   severity: low
#   solution: Make the test run record line coverage, or leave the coverage report out.
warn contains result if {
	not required
	is_number(minimum)
	reported
	not line_rate
	result := {
		"msg": sprintf(
			"the coverage report has no line rate (no lines measured): the %v%% minimum in %s is not checked",
			[percent(minimum), config.environment],
		),
		"rule": "coverage.not_measured_warning",
		"severity": "low",
		"finding_ids": [],
		"solution": "Make the test run record line coverage, or leave the coverage report out",
	}
}

# 0.710867 -> 71.09 (rounded to two decimals; whole numbers print without a fraction in OPA and regorus).
percent(rate) := round(rate * 10000) / 100
