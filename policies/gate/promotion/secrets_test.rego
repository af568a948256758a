package gate.promotion.secrets_test

import rego.v1

import data.gate.lib.fixtures_test as fx
import data.gate.promotion.secrets

aws := fx.secret("s1", "aws-access-key-id", "critical")

ids(results) := {id | some r in results; some id in r.finding_ids}

test_prod_denies_a_secret if {
	doc := fx.with_findings("prod", [aws])
	some r in secrets.deny with input as doc
	r.rule == "secrets.exposed"
	r.severity == "critical"
	r.msg == "critical secret aws-access-key-id (AWS Access Key ID) in deploy.sh line 3"
	r.finding_ids == ["s1"]
	contains(r.solution, "rotate the credential")
}

test_any_severity_is_denied_in_every_environment if {
	findings := [
		aws,
		fx.secret("s2", "jwt-token", "medium"),
		fx.secret("s3", "generic", "low"),
		fx.secret("s4", "other", "unknown"),
	]
	every env in ["prod", "staging", "dev"] {
		ids(secrets.deny) == {"s1", "s2", "s3", "s4"} with input as fx.with_findings(env, findings)
	}
}

test_unknown_severity_secret_counts_as_high if {
	doc := fx.with_findings("prod", [fx.secret("s4", "other", "unknown")])
	some r in secrets.deny with input as doc
	r.severity == "high"
}

test_no_secret_no_deny if {
	count(secrets.deny) == 0 with input as fx.clean
	count(secrets.warn) == 0 with input as fx.clean
}

test_waiver_naming_the_secret_rule_waives_it if {
	doc := fx.with_findings("prod", [aws, fx.secret("s2", "private-key", "high")])
	waivers := [fx.waiver("W-7", "private-key", "2027-03-01T00:00:00Z", {"environment": "prod"})]
	ids(secrets.deny) == {"s1"} with input as doc with data.waivers as waivers
}

test_cve_waiver_does_not_waive_a_secret if {
	doc := fx.with_findings("prod", [aws])
	waivers := [fx.waiver("W-8", "CVE-2021-44906", "2027-03-01T00:00:00Z", {})]
	ids(secrets.deny) == {"s1"} with input as doc with data.waivers as waivers
}

test_override_can_make_low_secrets_warnings if {
	doc := fx.with_findings("dev", [aws, fx.secret("s3", "generic", "low")])
	overrides := {"dev": {"secrets": {"deny": ["critical", "high"], "warn": ["medium", "low", "info", "unknown"]}}}
	ids(secrets.deny) == {"s1"} with input as doc with data.thresholds as overrides
	some w in secrets.warn with input as doc with data.thresholds as overrides
	w.rule == "secrets.exposed_warning"
	w.finding_ids == ["s3"]
}

test_secret_without_location_is_still_denied if {
	bare := {"id": "s9", "scanner": "trivy", "kind": "secret", "rule": "github-pat", "severity": "critical", "title": "GitHub PAT"}
	some r in secrets.deny with input as fx.with_findings("prod", [bare])
	r.msg == "critical secret github-pat (GitHub PAT) in an unknown location"
}
