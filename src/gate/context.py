"""Where a scan runs: commit, pipeline and actor, read from the CI's environment.

GATE_CONTEXT_COMMIT, GATE_CONTEXT_PIPELINE_URL and GATE_CONTEXT_ACTOR override what the CI
variables say, for CI systems gate does not know.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gate.redact import redact


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if env.get(name):
            return env[name]
    return None


def ci_context(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Commit, pipeline URL and actor from GitHub Actions, GitLab CI, Jenkins or GATE_CONTEXT_*."""
    env = os.environ if env is None else env
    github_run = None
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        github_run = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    found = {
        "git_commit": _first(env, "GATE_CONTEXT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT"),
        "pipeline_url": env.get("GATE_CONTEXT_PIPELINE_URL") or github_run or _first(env, "CI_PIPELINE_URL", "BUILD_URL"),
        "actor": _first(env, "GATE_CONTEXT_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER_ID"),
    }
    # stored in signed records for good: a pipeline URL with a token in it keeps only its location
    return {key: redact(value) for key, value in found.items() if value}
