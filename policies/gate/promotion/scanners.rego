# METADATA
# title: Required scanners
# description: >-
#   Every scanner the environment requires (prod: trivy and coverage; elsewhere: trivy) must have
#   given a report: a missing report is a deny, never a silent pass.
package gate.promotion.scanners

import rego.v1

import data.gate.lib.config

reported(name) if {
	some scanner in input.scanners
	scanner.name == name
}

# METADATA
# title: Required scanner has no report
# description: A scanner the environment's required_scanners names is not among input.scanners.
# custom:
#   rule_id: scanners.required
#   severity: high
#   solution: Run the scanner in the pipeline and pass its report with --report NAME=PATH.
deny contains result if {
	some name in config.settings.required_scanners
	not reported(name)
	result := {
		"msg": sprintf("required scanner %s has no report (required in %s)", [name, config.environment]),
		"rule": "scanners.required",
		"severity": "high",
		"finding_ids": [],
		"solution": sprintf("Run %s in the pipeline and pass its report with --report %s=PATH", [name, name]),
	}
}
