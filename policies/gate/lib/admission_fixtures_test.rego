# Shared fixtures for the admission policy tests: inputs shaped like the ones
# gate.reconcile.admission builds (policies/README.md, "Admission input").
package gate.lib.admission_fixtures_test

import rego.v1

now := "2027-01-22T00:00:00Z"

digest := "sha256:abababababababababababababababababababababababababababababababab"

image := sprintf("registry.example.com/shop/cart:1.4.2@%s", [digest])

container := "spec.template.spec.containers[web]"

# A decision as gate found it: allow, signed by a trusted key, 10 days old, replayed clean.
decision := {
	"decision_id": "0190a0a0-0000-7000-8000-000000000001",
	"outcome": "allow",
	"timestamp": "2027-01-12T00:00:00.000000Z",
	"age_seconds": 864000,
	"image": "registry.example.com/shop/cart",
	"signed": true,
	"signature_valid": true,
	"trusted_key": true,
	"signature_problem": null,
	"signing_key": "0123456789abcdef",
	"policy_digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
	"policy_revision": "gate-policies-0.1.0",
	"waivers": [],
	"replay": {"outcome": "allow", "violations": [], "warnings": [], "error": null},
}

# `decision` with some fields replaced.
decision_with(fields) := object.union(decision, fields)

pinned(decisions) := {
	"container": container,
	"image": image,
	"pinned": true,
	"digest": digest,
	"decisions": decisions,
}

request := {
	"uid": "00000000-0000-0000-0000-000000000000",
	"kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
	"namespace": "shop",
	"name": "cart",
	"operation": "CREATE",
	"object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"}},
	"oldObject": null,
	"userInfo": {"username": "system:serviceaccount:gate-system:gate"},
	"dryRun": false,
}

# An admission input for these images in an environment.
review(env, images) := {
	"request": request,
	"gate": {"environment": env, "now": now, "commit": null, "images": images},
}

# One pinned image with these decisions, in prod.
with_decisions(decisions) := review("prod", [pinned(decisions)])

# One pinned image whose newest decision is `decision` with these fields replaced, in prod.
with_decision(fields) := with_decisions([decision_with(fields)])

test_the_fixture_decision_is_admitted if {
	decision.outcome == "allow"
	pinned([decision]).digest == digest
	with_decision({}).gate.images[0].decisions[0].decision_id == decision.decision_id
}
