package gate.promotion.coverage_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.coverage

test_prod_denies_coverage_under_80_percent if {
	denies := coverage.deny with input as fx.with_line_rate("prod", 0.710867)
	some r in denies
	r.rule == "coverage.line_rate"
	r.msg == "line coverage 71.09% is under the 80% required in prod"
	r.finding_ids == []
	count(denies) == 1
}

test_prod_allows_exactly_80_percent if {
	count(coverage.deny) == 0 with input as fx.with_line_rate("prod", 0.8)
}

test_prod_denies_just_under_80_percent if {
	count(coverage.deny) == 1 with input as fx.with_line_rate("prod", 0.7999)
}

test_staging_threshold_is_60_percent if {
	count(coverage.deny) == 0 with input as fx.with_line_rate("staging", 0.71)
	count(coverage.deny) == 0 with input as fx.with_line_rate("staging", 0.6)
	denies := coverage.deny with input as fx.with_line_rate("staging", 0.319608)
	some r in denies
	r.msg == "line coverage 31.96% is under the 60% required in staging"
}

test_zero_coverage_is_denied if {
	some r in coverage.deny with input as fx.with_line_rate("prod", 0)
	r.msg == "line coverage 0% is under the 80% required in prod"
}

test_prod_denies_when_coverage_was_not_measured if {
	denies := coverage.deny with input as fx.with_line_rate("prod", null)
	some r in denies
	r.rule == "coverage.not_measured"
	r.severity == "high"
	contains(r.msg, "cannot be checked against the 80% required in prod")
	count(denies) == 1
}

test_staging_warns_when_coverage_was_not_measured if {
	doc := fx.with_line_rate("staging", null)
	count(coverage.deny) == 0 with input as doc
	some w in coverage.warn with input as doc
	w.rule == "coverage.not_measured_warning"
	contains(w.msg, "the 60% minimum in staging is not checked")
}

test_no_coverage_report_is_left_to_required_scanners if {
	doc := object.union(object.remove(fx.clean, ["metrics", "scanners"]), {"metrics": {}, "scanners": [fx.scanner("trivy")]})
	count(coverage.deny) == 0 with input as doc
	count(coverage.warn) == 0 with input as doc
}

test_report_without_metrics_counts_as_not_measured if {
	doc := object.union(object.remove(fx.clean, ["metrics"]), {"metrics": {}})
	some r in coverage.deny with input as doc
	r.rule == "coverage.not_measured"
}

test_override_raises_the_prod_minimum if {
	overrides := {"prod": {"min_line_coverage": 0.95}}
	some r in coverage.deny with input as fx.with_line_rate("prod", 0.9) with data.thresholds as overrides
	r.msg == "line coverage 90% is under the 95% required in prod"
}

test_null_minimum_switches_the_check_off if {
	overrides := {"staging": {"min_line_coverage": null}}
	count(coverage.deny) == 0 with input as fx.with_line_rate("staging", 0.1) with data.thresholds as overrides
	count(coverage.warn) == 0 with input as fx.with_line_rate("staging", null) with data.thresholds as overrides
}

test_percent_rounds_to_two_decimals if {
	coverage.percent(0.710867) == 71.09
	coverage.percent(0.8) == 80
	coverage.percent(1) == 100
}
