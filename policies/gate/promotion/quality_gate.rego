# METADATA
# title: SonarQube quality gate
# description: >-
#   The SonarQube quality gate of the analysis (input.metrics.sonarqube.quality_gate), checked only
#   when a SonarQube report is present. Any status other than OK fails (ERROR, WARN, and NONE: no
#   gate computed), naming the failed conditions. A waiver naming a condition's metric (e.g.
#   new_coverage) waives that condition; the gate passes when every failed condition is waived.
package gate.promotion.quality_gate

import rego.v1

import data.gate.lib.config
import data.gate.lib.findings
import data.gate.lib.waivers

quality_gate := input.metrics.sonarqube.quality_gate

failed_conditions := [condition |
	some condition in object.get(quality_gate, "conditions", [])
	condition.status in {"ERROR", "WARN"}
]

# Where the quality-gate findings are in input.findings. A local copy: regorus loses a rule read
# through an import inside a function body.
gate_positions := findings.positions.quality_gate

# Findings the SonarQube scanner made of a condition (one per failed condition), looked up among
# the quality-gate findings only: conditions are judged several times each, findings are many.
condition_findings(condition) := [finding |
	some i in gate_positions
	finding := input.findings[i]
	finding.rule == condition.metric
]

condition_waived(condition) if {
	some finding in condition_findings(condition)
	waivers.waived(finding)
}

unwaived_conditions := [condition |
	some condition in failed_conditions
	not condition_waived(condition)
]

# Failed, unless every failed condition is waived (a failed gate listing no condition fails).
failed if {
	quality_gate.status != "OK"
	count(unwaived_conditions) > 0
}

failed if {
	quality_gate.status != "OK"
	count(failed_conditions) == 0
}

comparators := {"LT": "below", "GT": "above", "EQ": "equal to", "NE": "other than"}

comparator_text(comparator) := object.get(comparators, comparator, comparator)

# "new_coverage is 82.5 (must not be below 85)", or "open_issues is 17" without a threshold.
condition_text(condition) := sprintf("%s is %v (must not be %s %v)", [
	condition.metric,
	object.get(condition, "actual_value", "unknown"),
	comparator_text(object.get(condition, "comparator", "beyond")),
	condition.error_threshold,
]) if {
	condition.error_threshold != null
}

condition_text(condition) := sprintf("%s is %v", [
	condition.metric,
	object.get(condition, "actual_value", "unknown"),
]) if {
	object.get(condition, "error_threshold", null) == null
}

message := sprintf("SonarQube quality gate is %v: %s", [
	quality_gate.status,
	concat("; ", [condition_text(condition) | some condition in unwaived_conditions]),
]) if {
	count(unwaived_conditions) > 0
}

message := sprintf("SonarQube quality gate is %v and names no failed condition", [quality_gate.status]) if {
	count(unwaived_conditions) == 0
}

finding_ids := [finding.id |
	some condition in unwaived_conditions
	some finding in condition_findings(condition)
]

solution := concat(" ", [
	"Fix the failed conditions in SonarQube and re-run the analysis;",
	"a condition that cannot be fixed now can be waived by its metric with a reason and an expiry",
])

# METADATA
# title: SonarQube quality gate failed
# description: The analysis' quality gate is not OK and the failed conditions are not all waived.
# custom:
#   rule_id: quality_gate.status
#   severity: high
#   solution: Fix the failed conditions in SonarQube and re-run the analysis, or waive a condition by its metric.
deny contains result if {
	config.settings.quality_gate == "deny"
	failed
	result := {
		"msg": message,
		"rule": "quality_gate.status",
		"severity": "high",
		"finding_ids": finding_ids,
		"solution": solution,
	}
}

# METADATA
# title: SonarQube quality gate failed (warning)
# description: As quality_gate.status, where the environment's quality_gate setting is warn.
# custom:
#   rule_id: quality_gate.status_warning
#   severity: medium
#   solution: Fix the failed conditions in SonarQube and re-run the analysis.
warn contains result if {
	config.settings.quality_gate == "warn"
	failed
	result := {
		"msg": message,
		"rule": "quality_gate.status_warning",
		"severity": "medium",
		"finding_ids": finding_ids,
		"solution": solution,
	}
}
