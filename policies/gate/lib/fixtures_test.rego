# Shared fixtures for the policy tests: findings, scanners and whole input documents shaped like
# `gate scan` output plus the environment and now the engine adds. No tests of its own beyond a
# check that the fixtures are what the tests assume.
package gate.lib.fixtures_test

import rego.v1

now := "2027-01-22T00:00:00Z"

image := "registry.example.com/shop/cart"

digest := "sha256:abababababababababababababababababababababababababababababababab"

vulnerability(id, rule, severity) := {
	"id": id,
	"scanner": "trivy",
	"kind": "vulnerability",
	"rule": rule,
	"severity": severity,
	"title": sprintf("%s in openssl", [rule]),
	"package": {"name": "libssl1.1", "version": "1.1.1c-r0", "fixed_version": "1.1.1d-r0", "type": "alpine"},
}

# A vulnerability with no fixed version.
unfixed(id, rule, severity) := {
	"id": id,
	"scanner": "trivy",
	"kind": "vulnerability",
	"rule": rule,
	"severity": severity,
	"title": sprintf("%s in libexpat", [rule]),
	"package": {"name": "libexpat", "version": "2.5.0-r2", "type": "alpine"},
}

secret(id, rule, severity) := {
	"id": id,
	"scanner": "trivy",
	"kind": "secret",
	"rule": rule,
	"severity": severity,
	"title": "AWS Access Key ID",
	"location": {"path": "deploy.sh", "start_line": 3, "end_line": 3},
}

misconfiguration(id, rule, severity) := {
	"id": id,
	"scanner": "trivy",
	"kind": "misconfiguration",
	"rule": rule,
	"severity": severity,
	"title": "Image user should not be 'root'",
	"location": {"path": "Dockerfile"},
	"raw": {"Resolution": "Add 'USER <non root user name>' line to the Dockerfile"},
}

license(id, rule, severity) := {
	"id": id,
	"scanner": "trivy",
	"kind": "license",
	"rule": rule,
	"severity": severity,
	"title": sprintf("License %s", [rule]),
	"message": sprintf("bash is licensed %s (restricted)", [rule]),
	"package": {"name": "bash"},
}

quality_gate_finding(id, metric) := {
	"id": id,
	"scanner": "sonarqube",
	"kind": "quality_gate",
	"rule": metric,
	"severity": "high",
	"title": sprintf("Quality gate condition on %s failed", [metric]),
}

scanner(name) := {
	"name": name,
	"version": "1.0",
	"plugin_version": "0.1.0",
	"format": name,
	"report": sprintf("%s.json", [name]),
	"report_sha256": "0000000000000000000000000000000000000000000000000000000000000000",
	"findings": 0,
}

# An input that every shipped rule allows in prod: trivy and coverage reported, 90% coverage.
clean := {
	"schema_version": 1,
	"gate_version": "0.1.0",
	"artifact": {"image": image, "digest": digest, "tag": "1.4.2"},
	"context": {},
	"environment": "prod",
	"now": now,
	"findings": [],
	"metrics": {"coverage": {"line_rate": 0.9, "branch_rate": null}},
	"scanners": [scanner("trivy"), scanner("coverage")],
}

# `clean` in another environment.
in_env(env) := object.union(clean, {"environment": env})

# `clean` in an environment, with these findings.
with_findings(env, findings) := object.union(in_env(env), {"findings": findings})

# `clean` in an environment with this coverage line rate.
with_line_rate(env, rate) := object.union(in_env(env), {"metrics": {"coverage": {"line_rate": rate}}})

# A waiver for a rule, expiring at `expires`, optionally scoped (pass {} for no scope).
waiver(id, rule, expires, scope) := object.union(
	{
		"id": id,
		"rule": rule,
		"reason": "not reachable: the vulnerable function is never called",
		"approved_by": "secops@example.com",
		"expires": expires,
	},
	scope,
)

test_clean_input_is_prod_with_trivy_and_coverage if {
	clean.environment == "prod"
	{s.name | some s in clean.scanners} == {"trivy", "coverage"}
	clean.metrics.coverage.line_rate >= 0.8
}
