# METADATA
# title: Settings and evaluation input
# description: >-
#   The thresholds in force (shipped data merged with data.thresholds) and the fields the engine
#   adds to the input (environment, now) must be well formed: a wrong type or a typo in a setting
#   would otherwise switch a rule off quietly.
package gate.promotion.settings

import rego.v1

import data.gate.lib.config

# METADATA
# title: Invalid settings
# description: A setting is missing, unknown or of the wrong type, or input.environment or input.now is missing.
# custom:
#   rule_id: settings.invalid
#   severity: high
#   solution: Correct the --data file (data.thresholds.<environment>) or the evaluation input as the message says.
deny contains result if {
	some problem in config.problems
	result := {
		"msg": problem,
		"rule": "settings.invalid",
		"severity": "high",
		"finding_ids": [],
		"solution": "Correct the --data file (data.thresholds.<environment>) or the evaluation input as the message says",
	}
}
