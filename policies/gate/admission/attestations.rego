# METADATA
# title: A signed verdict attached to every image
# description: >-
#   With the attached VSA as evidence (input.gate.evidence vsa or both), every pinned image must
#   carry an SLSA Verification Summary Attestation that gate verified (input.gate.images[].vsa):
#   signed by a trusted key, for the image's own digest and this environment, the newest one
#   PASSED, and no older than the VSA max age (gate reconcile --vsa-max-age). An image whose
#   VSA could not be fetched or checked is blocked too: no answer is not a pass.
package gate.admission.attestations

import rego.v1

import data.gate.lib.admission

environment := admission.environment

# The VSA verdict gate found for the image; undefined when it gave none.
verdict(image) := image.vsa if is_object(image.vsa)

# Why a verdict did not pass, in gate.attestation's own words when it gave them.
reason(vsa) := vsa.reason if is_string(vsa.reason)

reason(vsa) := "its VSA did not pass" if not is_string(object.get(vsa, "reason", null))

# METADATA
# title: No valid PASSED VSA
# description: >-
#   The image has no VSA for this environment, or the newest valid one is FAILED, stale, from the
#   future, for another image, or signed by a key that is not trusted.
# custom:
#   rule_id: admission.vsa.not_passed
#   severity: high
#   solution: Promote the image with gate promote (which attaches a signed VSA), or evaluate and promote it again when its VSA is stale or FAILED.
deny contains result if {
	admission.uses_vsa
	some image in admission.images
	admission.pinned(image)
	vsa := verdict(image)
	object.get(vsa, "error", false) != true
	object.get(vsa, "passed", false) != true
	result := {
		"msg": sprintf("container %v: %v", [image.container, reason(vsa)]),
		"rule": "admission.vsa.not_passed",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"solution": "Promote the image with gate promote (which attaches a signed VSA), or evaluate and promote it again when its VSA is stale or FAILED",
	}
}

# METADATA
# title: VSA could not be checked
# description: >-
#   The VSA attached to the image could not be fetched or checked (registry unreachable, timeout,
#   malformed attachment): the image is blocked until it can be.
# custom:
#   rule_id: admission.vsa.unavailable
#   severity: high
#   solution: Let the cluster reach the image's registry (and give it credentials in the Docker config), then try again.
deny contains result if {
	admission.uses_vsa
	some image in admission.images
	admission.pinned(image)
	vsa := verdict(image)
	object.get(vsa, "error", false) == true
	result := {
		"msg": sprintf("container %v: %v", [image.container, reason(vsa)]),
		"rule": "admission.vsa.unavailable",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"solution": "Let the cluster reach the image's registry (and give it credentials in the Docker config), then try again",
	}
}

# METADATA
# title: No VSA verdict
# description: The input names no VSA verdict for a pinned image although the evidence requires one.
# custom:
#   rule_id: admission.vsa.missing
#   severity: high
#   solution: Judge the object with gate reconcile or gate serve --admission, which verify the attached VSA.
deny contains result if {
	admission.uses_vsa
	some image in admission.images
	admission.pinned(image)
	not verdict(image)
	result := {
		"msg": sprintf("container %v: no VSA verdict for %v in %v", [image.container, image.image, environment]),
		"rule": "admission.vsa.missing",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"solution": "Judge the object with gate reconcile or gate serve --admission, which verify the attached VSA",
	}
}
