# METADATA
# title: Platforms of an image index
# description: >-
#   An image index (an OCI image index or a Docker manifest list, known to gate from
#   --image-manifest) carries one image per platform, and a cluster runs whichever matches its
#   nodes: every platform the index carries (input.artifact.platforms) must be covered by a report
#   of that platform, and so must every platform the environment's platforms.required setting lists
#   (shipped: none), even for a single image. A report covers the platform gate bound it to
#   (input.scanners[_].platform: a Trivy image scan's config platform, bound to this image by its
#   digests; docs/evidence.md).
package gate.promotion.platforms

import rego.v1

import data.gate.lib.config

# Whether the image is an index whose platforms gate knows.
is_index if is_array(input.artifact.platforms)

# The platforms the index carries; empty for a single image, or when the manifest was not given.
carried contains platform if {
	is_index
	some platform in input.artifact.platforms
	is_string(platform)
}

# The platforms the reports cover, each with the scanners that cover it.
covered contains platform if {
	some scanner in input.scanners
	platform := scanner.platform
	is_string(platform)
	platform != "unknown"
}

# The platforms the environment requires (setting platforms.required; config.problems checks its shape).
required contains platform if {
	some platform in config.required_platforms
	is_string(platform)
}

image_ref := sprintf("%v@%v", [input.artifact.image, input.artifact.digest])

environment := config.environment

# METADATA
# title: A platform of the index has no report
# description: >-
#   The image is an index and no report covers one of the platforms it carries (an image whose
#   manifest states no platform, "unknown", can never be covered).
# custom:
#   rule_id: platforms.missing
#   severity: high
#   solution: Scan that platform of the image and pass its report, e.g. trivy image --platform linux/arm64 --format json REPO@sha256:INDEX.
deny contains result if {
	some platform in carried
	not platform in covered
	result := {
		"msg": missing_message(platform),
		"rule": "platforms.missing",
		"severity": "high",
		"finding_ids": [],
		"solution": missing_solution(platform),
	}
}

missing_message(platform) := sprintf("no report covers %s of the index %s", [platform, image_ref]) if {
	platform != "unknown"
}

else := sprintf("an image manifest of the index %s states no platform: no report can cover it", [image_ref])

missing_solution(platform) := sprintf(
	"Scan that platform and pass its report: trivy image --platform %s --format json --output trivy-%s.json %s",
	[platform, replace(platform, "/", "-"), image_ref],
) if {
	platform != "unknown"
}

else := "Rebuild the index with a platform on every image entry (docker buildx build --platform ...)"

# METADATA
# title: A required platform has no report
# description: >-
#   The environment's platforms.required lists a platform that no report covers, or that the index
#   does not carry at all.
# custom:
#   rule_id: platforms.required
#   severity: high
#   solution: Build and scan the image for every required platform, or change platforms.required for the environment in data.thresholds.
deny contains result if {
	some platform in required
	not platform in covered
	result := {
		"msg": required_message(platform),
		"rule": "platforms.required",
		"severity": "high",
		"finding_ids": [],
		"solution": required_solution(platform),
	}
}

required_message(platform) := sprintf(
	"the index %s does not carry %s, required in %s",
	[image_ref, platform, environment],
) if {
	is_index
	not platform in carried
}

else := sprintf("no report covers %s, required in %s", [platform, environment])

required_solution(platform) := sprintf(
	"Build the image for %s too (docker buildx build --platform ...), or change platforms.required for %s in data.thresholds",
	[platform, environment],
) if {
	is_index
	not platform in carried
}

else := sprintf(
	"Scan the %s image and pass its report: trivy image --platform %s --format json IMAGE@sha256:DIGEST",
	[platform, platform],
)

# METADATA
# title: A report covers a platform the index does not carry
# description: >-
#   A report states a platform the index does not carry: it is about another image, and says
#   nothing about this one.
# custom:
#   rule_id: platforms.extra
#   severity: medium
#   solution: Pass the reports of this image's platforms only.
warn contains result if {
	is_index
	some scanner in input.scanners
	platform := scanner.platform
	is_string(platform)
	not platform in carried
	result := {
		"msg": sprintf(
			"report %v covers %s, which the index %s does not carry",
			[scanner.report, platform, image_ref],
		),
		"rule": "platforms.extra",
		"severity": "medium",
		"finding_ids": [],
		"solution": "Pass the reports of this image's platforms only",
	}
}

# METADATA
# title: Malformed platform input
# description: input.artifact.platforms must be a list of platform names, and a scanner's platform a name.
# custom:
#   rule_id: platforms.invalid
#   severity: high
#   solution: Let gate evaluate build the input (--image-manifest); do not edit it by hand.
deny contains result if {
	some problem in input_problems
	result := {
		"msg": problem,
		"rule": "platforms.invalid",
		"severity": "high",
		"finding_ids": [],
		"solution": "Let gate evaluate build the input (--image-manifest); do not edit it by hand",
	}
}

input_problems contains "input.artifact.platforms must be a list of platform names" if {
	value := input.artifact.platforms
	not config.string_list(value)
}

input_problems contains msg if {
	some scanner in input.scanners
	value := scanner.platform
	not is_string(value)
	msg := sprintf("input.scanners: the platform of report %v must be a platform name", [scanner.report])
}
