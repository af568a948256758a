# METADATA
# title: Admission settings and helpers
# description: >-
#   What the gate.admission rules share. The input is an AdmissionReview-shaped document (see
#   policies/README.md, "Admission input"): input.request is the Kubernetes request, input.gate what
#   gate found for it (environment, now, and per container image the newest gate decisions for its
#   digest in this environment, verified and replayed under today's promotion policy).
#   max_decision_age comes from data.admission.max_decision_age (--data) over the shipped
#   data.gate.config.admission.max_decision_age, by environment, then "default"; `problems` lists
#   every setting or input field that is missing or malformed (a typo never loosens the gate).
package gate.lib.admission

import rego.v1

import data.gate.lib.config

# Keys data.admission (from --data) may hold.
known_settings := {"max_decision_age"}

# A Go duration ("720h", "1h30m"): what time.parse_duration_ns accepts without an error.
duration := `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

digest_pattern := `^sha256:[0-9a-f]{64}$`

default environment := ""

# The evidence that admits an image (input.gate.evidence): "log" (the decision log), "vsa" (the
# VSA attached to the image) or "both". An input without it comes from a gate that had only the
# log: "log". Any other value is a problem (and then neither kind of evidence can admit).
known_evidence := {"vsa", "log", "both"}

default evidence := "log"

evidence := input.gate.evidence if "evidence" in object.keys(object.get(input, "gate", {}))

# The decision log must admit the image.
uses_log if evidence in {"log", "both"}

# The VSA attached to the image must admit it.
uses_vsa if evidence in {"vsa", "both"}

environment := input.gate.environment if is_string(input.gate.environment)

# The evaluation time; undefined without a valid input.gate.now.
now_ns := config.time_ns(input.gate.now)

default images := []

images := input.gate.images if images_given

images_given if is_array(input.gate.images)

# The mapping value, or {} for anything else.
mapping(value) := value if is_object(value)

mapping(value) := {} if not is_object(value)

default shipped := {}

shipped := data.gate.config.admission if is_object(data.gate.config.admission)

default overrides := {}

overrides := data.admission if is_object(data.admission)

# max_decision_age candidates, most specific first: --data for the environment, shipped for the
# environment, --data default, shipped default.
age_candidates := [value |
	some source in [
		[overrides, environment],
		[shipped, environment],
		[overrides, "default"],
		[shipped, "default"],
	]
	value := object.get(mapping(object.get(source[0], "max_decision_age", {})), source[1], null)
	value != null
]

default max_age := null

max_age := age_candidates[0] if count(age_candidates) > 0

max_age_ns := time.parse_duration_ns(max_age) if {
	is_string(max_age)
	regex.match(duration, max_age)
}

# Local copy: function bodies read this, never admission settings through another rule chain.
max_ns := max_age_ns

# Within max_decision_age; a decision of unknown age is never fresh.
fresh(decision) if {
	is_number(decision.age_seconds)
	decision.age_seconds * 1000000000 <= max_ns
}

# "1082.5h old" (hours to one decimal), or "of unknown age".
age_text(decision) := sprintf("%vh old", [round(decision.age_seconds / 360) / 10]) if is_number(decision.age_seconds)

age_text(decision) := "of unknown age" if not is_number(object.get(decision, "age_seconds", null))

# The image is pinned by a well-formed sha256 digest.
pinned(image) if {
	image.pinned == true
	regex.match(digest_pattern, object.get(image, "digest", ""))
}

# The newest decision for a pinned image's digest in this environment (decisions are newest first).
newest(image) := decision if {
	pinned(image)
	decisions := object.get(image, "decisions", [])
	is_array(decisions)
	count(decisions) > 0
	decision := decisions[0]
}

# The newest decision when it is an allow: the one the object would be admitted on.
relied_on(image) := decision if {
	decision := newest(image)
	decision.outcome == "allow"
}

# Signed by a trusted key with a signature (and record hash) that verifies.
trusted(decision) if {
	decision.signed == true
	decision.signature_valid == true
	decision.trusted_key == true
}

# Why a decision's signature is not trusted: the verifier's own words, else from the flags.
signature_problem(decision) := decision.signature_problem if is_string(decision.signature_problem)

signature_problem(decision) := "unsigned: the record has no signature" if {
	not is_string(object.get(decision, "signature_problem", null))
	decision.signed != true
}

signature_problem(decision) := sprintf("signed by key %v, which is not a trusted key", [object.get(decision, "signing_key", null)]) if {
	not is_string(object.get(decision, "signature_problem", null))
	decision.signed == true
	decision.trusted_key != true
}

signature_problem(decision) := "bad signature: it does not match the record" if {
	not is_string(object.get(decision, "signature_problem", null))
	decision.signed == true
	decision.trusted_key == true
}

# A waiver the decision applied has expired: by its own flag, or by its expiry against now.
expired(waiver) if waiver.expired == true

expired(waiver) if config.time_ns(waiver.expires) <= now_ns

# A replayed violation whose rule is not in force yet (custom.effective_on after now).
pending(violation) if config.time_ns(violation.effective_on) > now_ns

problems contains "input.gate.environment is missing: the environment decides which decisions count" if {
	environment == ""
}

# Only a declared environment has decisions that count (gate.lib.config declares them).
declared_environments := config.declared

problems contains msg if {
	environment != ""
	not environment in declared_environments
	msg := sprintf(
		"environment \"%s\" is not declared in the policy data; declared: %s",
		[environment, concat(", ", sort(declared_environments))],
	)
}

problems contains msg if some msg in config.declaration_problems

problems contains msg if {
	not evidence in known_evidence
	msg := sprintf("input.gate.evidence must be one of both, log, vsa, not %v", [evidence])
}

problems contains "input.gate.now is missing or not an RFC 3339 timestamp: decision age and waivers cannot be checked" if {
	not now_ns
}

problems contains "input.gate.images is missing or not a list: the object's images cannot be checked" if {
	not images_given
}

problems contains msg if {
	value := data.admission
	not is_object(value)
	msg := sprintf("data.admission must be a mapping of admission settings, not a %s", [type_name(value)])
}

problems contains msg if {
	some key in object.keys(overrides)
	not key in known_settings
	msg := sprintf("unknown admission setting %s (known: %s)", [key, concat(", ", sort(known_settings))])
}

problems contains msg if {
	not max_age_ns
	msg := sprintf(
		"setting admission.max_decision_age for environment %s must be a Go duration such as \"720h\", not %v",
		[environment, max_age],
	)
}
