# METADATA
# title: Gate decisions behind every image
# description: >-
#   With the decision log as evidence (input.gate.evidence log or both, the default for an input
#   without it), every pinned image must carry a gate decision for its digest in this environment: the newest
#   one counts, and it must be an allow, signed by a trusted key with a record that verifies, no
#   older than max_decision_age, and every waiver it relied on must still be in force.
package gate.admission.decisions

import rego.v1

import data.gate.lib.admission

environment := admission.environment

max_age := admission.max_age

max_age_ns := admission.max_age_ns

# METADATA
# title: No gate decision
# description: >-
#   The image's digest has no gate decision in this environment: it never passed the gate.
# custom:
#   rule_id: admission.decisions.missing
#   severity: high
#   solution: Run gate evaluate for this image digest and environment, and deploy it only after an allow.
deny contains result if {
	admission.uses_log
	some image in admission.images
	admission.pinned(image)
	not admission.newest(image)
	result := {
		"msg": sprintf(
			"container %v: no gate decision for %v in %v: it never passed the gate",
			[image.container, image.image, environment],
		),
		"rule": "admission.decisions.missing",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"solution": "Run gate evaluate for this image digest and environment, and deploy it only after an allow",
	}
}

# METADATA
# title: Newest decision is not an allow
# description: The newest gate decision for the image's digest in this environment denied it (or could not decide).
# custom:
#   rule_id: admission.decisions.not_allowed
#   severity: high
#   solution: Fix what the decision names and evaluate the image again, or deploy an image that was allowed.
deny contains result if {
	some image in admission.images
	decision := admission.newest(image)
	decision.outcome != "allow"
	result := {
		"msg": sprintf(
			"container %v: the newest gate decision for %v in %v is %v, not allow (decision %v of %v)",
			[image.container, image.image, environment, decision.outcome, decision.decision_id, decision.timestamp],
		),
		"rule": "admission.decisions.not_allowed",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"decision_id": decision.decision_id,
		"solution": "Fix what the decision names and evaluate the image again, or deploy an image that was allowed",
	}
}

# METADATA
# title: Decision not signed by a trusted key
# description: >-
#   The allow the image relies on is unsigned, signed by a key that is not trusted
#   (GATE_TRUSTED_KEYS), or its signature or record hash does not verify: it may be forged or edited.
# custom:
#   rule_id: admission.decisions.signature
#   severity: high
#   solution: Evaluate the image with the CI's signing key, trust that key's public half, and run gate decisions verify.
deny contains result if {
	some image in admission.images
	decision := admission.relied_on(image)
	not admission.trusted(decision)
	result := {
		"msg": sprintf(
			"container %v: gate decision %v for %v cannot be trusted: %v",
			[image.container, decision.decision_id, image.image, admission.signature_problem(decision)],
		),
		"rule": "admission.decisions.signature",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"decision_id": decision.decision_id,
		"solution": "Evaluate the image with the CI's signing key, trust that key's public half, and run gate decisions verify",
	}
}

# METADATA
# title: Decision too old
# description: The allow the image relies on is older than max_decision_age for this environment (prod 720h, elsewhere 2160h).
# custom:
#   rule_id: admission.decisions.too_old
#   severity: medium
#   solution: Evaluate the image again with fresh scanner reports, or raise data.admission.max_decision_age.
deny contains result if {
	some image in admission.images
	decision := admission.relied_on(image)
	# without a valid setting, admission.settings.invalid denies instead
	is_number(max_age_ns)
	not admission.fresh(decision)
	result := {
		"msg": sprintf(
			"container %v: gate decision %v for %v is %v (decided %v); %v accepts decisions at most %v old",
			[
				image.container, decision.decision_id, image.image, admission.age_text(decision),
				object.get(decision, "timestamp", "at an unknown time"), environment, max_age,
			],
		),
		"rule": "admission.decisions.too_old",
		"severity": "medium",
		"container": image.container,
		"image": image.image,
		"decision_id": decision.decision_id,
		"solution": "Evaluate the image again with fresh scanner reports, or raise data.admission.max_decision_age",
	}
}

# METADATA
# title: Waiver expired since the decision
# description: >-
#   The allow the image relies on applied a waiver that has expired since: the findings it waived count again.
# custom:
#   rule_id: admission.decisions.waiver_expired
#   severity: high
#   solution: Fix the waived findings and evaluate the image again, or renew the waiver with a new approval and expiry.
deny contains result if {
	some image in admission.images
	decision := admission.relied_on(image)
	some waiver in object.get(decision, "waivers", [])
	admission.expired(waiver)
	result := {
		"msg": sprintf(
			"container %v: gate decision %v for %v relied on waiver %v (%v), which expired on %v",
			[image.container, decision.decision_id, image.image, waiver.id, waiver.rule, waiver.expires],
		),
		"rule": "admission.decisions.waiver_expired",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"decision_id": decision.decision_id,
		"solution": "Fix the waived findings and evaluate the image again, or renew the waiver with a new approval and expiry",
	}
}
