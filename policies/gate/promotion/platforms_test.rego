package gate.promotion.platforms_test

import rego.v1

import data.gate.lib.config
import data.gate.lib.fixtures_test as fx
import data.gate.promotion.platforms

ref := sprintf("%s@%s", [fx.image, fx.digest])

clean := fx.clean

trivy_of(platform) := object.union(fx.scanner("trivy"), {"platform": platform, "report": sprintf("trivy-%s.json", [platform])})

# `clean` about an index carrying `carried`, with a trivy report per platform in `scanned`.
index_input(carried, scanned) := object.union(clean, {
	"artifact": object.union(clean.artifact, {
		"media_type": "application/vnd.oci.image.index.v1+json",
		"platforms": carried,
	}),
	"scanners": array.concat([fx.scanner("coverage")], [trivy_of(p) | some p in scanned]),
})

test_a_single_image_needs_no_platform if {
	count(platforms.deny) == 0 with input as fx.clean
	count(platforms.warn) == 0 with input as fx.clean
}

test_an_index_with_every_platform_covered_is_allowed if {
	doc := index_input(["linux/amd64", "linux/arm64"], ["linux/amd64", "linux/arm64"])
	count(platforms.deny) == 0 with input as doc
	count(platforms.warn) == 0 with input as doc
}

test_a_platform_without_report_is_denied_by_name if {
	denies := platforms.deny with input as index_input(["linux/amd64", "linux/arm64"], ["linux/amd64"])
	count(denies) == 1
	some r in denies
	r.rule == "platforms.missing"
	r.severity == "high"
	r.msg == sprintf("no report covers linux/arm64 of the index %s", [ref])
	r.solution == sprintf("Scan that platform and pass its report: trivy image --platform linux/arm64 --format json --output trivy-linux-arm64.json %s", [ref])
}

test_an_index_without_image_reports_denies_every_platform if {
	doc := index_input(["linux/amd64", "linux/arm/v7", "linux/arm64"], [])
	{r.msg | some r in platforms.deny with input as doc} == {
		sprintf("no report covers linux/amd64 of the index %s", [ref]),
		sprintf("no report covers linux/arm/v7 of the index %s", [ref]),
		sprintf("no report covers linux/arm64 of the index %s", [ref]),
	}
}

test_a_report_without_platform_covers_nothing if {
	doc := object.union(index_input(["linux/amd64"], []), {"scanners": [fx.scanner("trivy"), fx.scanner("coverage")]})
	some r in platforms.deny with input as doc
	r.msg == sprintf("no report covers linux/amd64 of the index %s", [ref])
}

test_an_entry_without_platform_can_never_be_covered if {
	denies := platforms.deny with input as index_input(["linux/amd64", "unknown"], ["linux/amd64", "unknown"])
	{r.msg | some r in denies} == {sprintf("an image manifest of the index %s states no platform: no report can cover it", [ref])}
}

test_a_report_of_another_platform_warns if {
	doc := index_input(["linux/amd64"], ["linux/amd64", "linux/s390x"])
	count(platforms.deny) == 0 with input as doc
	some w in platforms.warn with input as doc
	w.rule == "platforms.extra"
	w.msg == sprintf("report trivy-linux/s390x.json covers linux/s390x, which the index %s does not carry", [ref])
}

test_required_platforms_apply_to_a_single_image if {
	overrides := {"prod": {"platforms": {"required": ["linux/arm64"]}}}
	single := object.union(fx.clean, {"scanners": [trivy_of("linux/amd64"), fx.scanner("coverage")]})
	denies := platforms.deny with input as single with data.thresholds as overrides
	count(denies) == 1
	some r in denies
	r.rule == "platforms.required"
	r.msg == "no report covers linux/arm64, required in prod"
	count(platforms.deny) == 0 with input as object.union(single, {"scanners": [trivy_of("linux/arm64")]})
		with data.thresholds as overrides
}

test_a_required_platform_the_index_lacks_is_named if {
	overrides := {"prod": {"platforms": {"required": ["linux/amd64", "linux/arm64"]}}}
	doc := index_input(["linux/amd64"], ["linux/amd64"])
	denies := platforms.deny with input as doc with data.thresholds as overrides
	{r.msg | some r in denies} == {sprintf("the index %s does not carry linux/arm64, required in prod", [ref])}
}

test_required_platforms_are_per_environment_and_inherited if {
	overrides := {"dev": {"platforms": {"required": ["linux/arm64"]}}}
	single := object.union(fx.clean, {"scanners": [trivy_of("linux/amd64")]})
	count(platforms.deny) == 0 with input as single with data.thresholds as overrides
	some r in platforms.deny with input as object.union(single, {"environment": "staging"}) with data.thresholds as overrides
	r.msg == "no report covers linux/arm64, required in staging"
}

test_shipped_data_requires_no_platform if {
	every env in ["prod", "staging", "dev"] {
		count(platforms.required) == 0 with input as fx.in_env(env)
	}
}

test_malformed_platform_settings_are_problems if {
	bad := {"prod": {"platforms": ["linux/arm64"]}}
	some p in config.problems with input as fx.clean with data.thresholds as bad
	startswith(p, "setting platforms for environment prod must be {\"required\": [...]}")
	spelled := {"prod": {"platforms": {"required": ["linux/arm64/v8", "linux/x86_64", "linux/arm"]}}}
	found := config.problems with input as fx.clean with data.thresholds as spelled
	"setting platforms.required for environment prod: write linux/arm64/v8 as linux/arm64 (gate normalises platforms as containerd does)" in found
	"setting platforms.required for environment prod: write linux/x86_64 as linux/amd64 (gate normalises platforms as containerd does)" in found
	"setting platforms.required for environment prod: write linux/arm as linux/arm/v7 (gate normalises platforms as containerd does)" in found
	upper := {"prod": {"platforms": {"required": ["Linux/AMD64"]}}}
	some q in config.problems with input as fx.clean with data.thresholds as upper
	startswith(q, "setting platforms for environment prod must be")
}

test_malformed_platform_input_is_denied if {
	doc := object.union(fx.clean, {"artifact": object.union(fx.clean.artifact, {"platforms": "linux/amd64"})})
	some r in platforms.deny with input as doc
	r.rule == "platforms.invalid"
	r.msg == "input.artifact.platforms must be a list of platform names"
	doc2 := object.union(fx.clean, {"scanners": [object.union(fx.scanner("trivy"), {"platform": ["linux/amd64"]})]})
	some s in platforms.deny with input as doc2
	s.msg == "input.scanners: the platform of report trivy.json must be a platform name"
	doc3 := object.union(fx.clean, {"artifact": object.union(fx.clean.artifact, {"platforms": ["linux/amd64", 7]})})
	some t in platforms.deny with input as doc3
	t.rule == "platforms.invalid"
}
