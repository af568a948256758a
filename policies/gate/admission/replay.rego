# METADATA
# title: Today's promotion policy
# description: >-
#   The allow an image relies on was decided under the policy of its day. Its stored input is
#   replayed under today's gate.promotion policy (with the data it was decided with, under
#   today's --data) at input.gate.now: a rule added or tightened since, or a waiver that lapsed,
#   blocks the image. A violation of a rule whose custom.effective_on is still in the future only
#   warns until then.
package gate.admission.replay

import rego.v1

import data.gate.lib.admission

replayed(image) := [decision, replay] if {
	decision := admission.relied_on(image)
	replay := decision.replay
	is_object(replay)
}

replay_given(decision) if is_object(decision.replay)

# Why the replay gave no answer (a decision relied on must have been replayed).
failure(decision) := object.get(decision.replay, "error", "unknown error") if decision.replay.outcome == "error"

failure(decision) := "it was not replayed" if not replay_given(decision)

# Violations of rules in force today.
in_force(replay) := [violation |
	some violation in object.get(replay, "violations", [])
	not admission.pending(violation)
]

# METADATA
# title: Denied by today's policy
# description: Replayed under today's promotion policy, the input the allow was decided on is denied.
# custom:
#   rule_id: admission.replay.denied
#   severity: high
#   solution: Fix the violations and evaluate the image again (or waive them), then promote the new decision.
deny contains result if {
	some image in admission.images
	[decision, replay] := replayed(image)
	violations := in_force(replay)
	count(violations) > 0
	rules := sort({violation.rule | some violation in violations})
	example := sort([violation.message | some violation in violations])[0]
	result := {
		"msg": sprintf(
			"container %v: gate decision %v for %v no longer passes today's policy: %v violation(s) of %v (e.g. %v)",
			[image.container, decision.decision_id, image.image, count(violations), concat(", ", rules), example],
		),
		"rule": "admission.replay.denied",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"decision_id": decision.decision_id,
		"solution": "Fix the violations and evaluate the image again (or waive them), then promote the new decision",
	}
}

# METADATA
# title: Today's policy will deny it
# description: >-
#   Replayed under today's promotion policy, the input violates a rule that is not in force yet
#   (custom.effective_on in the future): the image is admitted now and blocked from that date.
# custom:
#   rule_id: admission.replay.pending
#   severity: medium
#   solution: Fix the violations before the rule comes into force, and evaluate the image again.
warn contains result if {
	some image in admission.images
	[decision, replay] := replayed(image)
	some violation in object.get(replay, "violations", [])
	admission.pending(violation)
	result := {
		"msg": sprintf(
			"container %v: %v will be blocked from %v by %v: %v",
			[image.container, image.image, violation.effective_on, violation.rule, violation.message],
		),
		"rule": "admission.replay.pending",
		"severity": "medium",
		"container": image.container,
		"image": image.image,
		"decision_id": decision.decision_id,
		"solution": "Fix the violations before the rule comes into force, and evaluate the image again",
	}
}

# METADATA
# title: Replay failed
# description: >-
#   The stored input could not be evaluated under today's promotion policy: no answer is not an allow.
# custom:
#   rule_id: admission.replay.error
#   severity: high
#   solution: Fix the policy bundle (or the record, if gate decisions verify finds it edited), or evaluate the image again.
deny contains result if {
	some image in admission.images
	decision := admission.relied_on(image)
	problem := failure(decision)
	result := {
		"msg": sprintf(
			"container %v: gate decision %v for %v could not be re-checked under today's policy: %v",
			[image.container, decision.decision_id, image.image, problem],
		),
		"rule": "admission.replay.error",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"decision_id": decision.decision_id,
		"solution": "Fix the policy bundle (or the record, if gate decisions verify finds it edited), or evaluate the image again",
	}
}
