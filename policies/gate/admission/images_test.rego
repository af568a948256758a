package gate.admission.images_test

import rego.v1

import data.gate.admission.images
import data.gate.lib.admission_fixtures_test as fx

test_a_pinned_image_passes if {
	doc := fx.with_decision({})
	count(images.deny) == 0 with input as doc
}

test_a_tag_only_image_is_denied if {
	tagged := {
		"container": "spec.containers[nginx]",
		"image": "nginx:1.25",
		"pinned": false,
		"digest": null,
		"decisions": [],
	}
	doc := fx.review("prod", [tagged])
	denies := images.deny with input as doc
	count(denies) == 1
	some r in denies
	r.rule == "admission.images.unpinned"
	r.msg == "container spec.containers[nginx]: image nginx:1.25 is not pinned by digest (tag only): a tag can move after the gate decided"
	r.container == "spec.containers[nginx]"
}

test_an_untagged_image_is_denied if {
	bare := {"container": "spec.containers[alpine]", "image": "alpine", "pinned": false, "digest": null, "decisions": []}
	doc := fx.review("staging", [bare])
	some r in images.deny with input as doc
	r.image == "alpine"
}

test_no_images_nothing_to_deny if {
	doc := fx.review("prod", [])
	count(images.deny) == 0 with input as doc
}
