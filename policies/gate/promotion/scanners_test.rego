package gate.promotion.scanners_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.scanners

clean := fx.clean

only(names) := object.union(clean, {"scanners": [fx.scanner(name) | some name in names]})

in_env_with(env, names) := object.union(only(names), {"environment": env})

test_prod_with_trivy_and_coverage_is_allowed if {
	count(scanners.deny) == 0 with input as fx.clean
}

test_prod_without_coverage_is_denied if {
	denies := scanners.deny with input as only(["trivy"])
	count(denies) == 1
	some r in denies
	r.rule == "scanners.required"
	r.severity == "high"
	r.msg == "required scanner coverage has no report (required in prod)"
	r.solution == "Run coverage in the pipeline and pass its report with --report coverage=PATH"
}

test_prod_without_any_report_names_both if {
	denies := scanners.deny with input as only([])
	{r.msg | some r in denies} == {
		"required scanner trivy has no report (required in prod)",
		"required scanner coverage has no report (required in prod)",
	}
}

test_staging_requires_trivy_only if {
	count(scanners.deny) == 0 with input as in_env_with("staging", ["trivy"])
	some r in scanners.deny with input as in_env_with("staging", ["coverage"])
	r.msg == "required scanner trivy has no report (required in staging)"
}

test_override_can_require_sonarqube if {
	overrides := {"prod": {"required_scanners": ["trivy", "coverage", "sonarqube"]}}
	some r in scanners.deny with input as fx.clean with data.thresholds as overrides
	r.msg == "required scanner sonarqube has no report (required in prod)"
}

test_extra_scanners_are_fine if {
	count(scanners.deny) == 0 with input as only(["trivy", "coverage", "sonarqube", "grype"])
}
