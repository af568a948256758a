# METADATA
# title: Images pinned by digest
# description: >-
#   Every container image of the object (containers, init and ephemeral containers of any pod
#   template) must be pinned by digest. A gate decision is about a digest; a tag can be moved to
#   other content after the gate decided, so a tag-only (or untagged, implicitly latest) image
#   can never be shown to have passed the gate.
package gate.admission.images

import rego.v1

import data.gate.lib.admission

# METADATA
# title: Image not pinned by digest
# description: A container image is given by tag only (or by no tag at all), not as image@sha256:<digest>.
# custom:
#   rule_id: admission.images.unpinned
#   severity: high
#   solution: Deploy the image by digest (image@sha256:<digest>), as gate promote writes it into the GitOps repository.
deny contains result if {
	some image in admission.images
	not admission.pinned(image)
	result := {
		"msg": sprintf(
			"container %v: image %v is not pinned by digest (tag only): a tag can move after the gate decided",
			[image.container, image.image],
		),
		"rule": "admission.images.unpinned",
		"severity": "high",
		"container": image.container,
		"image": image.image,
		"solution": "Deploy the image by digest (image@sha256:<digest>), as gate promote writes it into the GitOps repository",
	}
}
