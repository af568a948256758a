# METADATA
# title: Admission settings and input
# description: >-
#   The admission settings in force (max_decision_age) and the fields gate adds to the input
#   (gate.environment, gate.now, gate.images) must be well formed: a typo never loosens the gate.
package gate.admission.settings

import rego.v1

import data.gate.lib.admission

# METADATA
# title: Invalid admission settings
# description: An admission setting is unknown or malformed, or input.gate.environment, now or images is missing.
# custom:
#   rule_id: admission.settings.invalid
#   severity: high
#   solution: Correct the --data file (data.admission) or the admission input as the message says.
deny contains result if {
	some problem in admission.problems
	result := {
		"msg": problem,
		"rule": "admission.settings.invalid",
		"severity": "high",
		"solution": "Correct the --data file (data.admission) or the admission input as the message says",
	}
}
