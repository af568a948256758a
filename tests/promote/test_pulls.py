"""`gate promote --pr` end to end: the real registry and git fixtures, and a STAND-IN for GitHub's and
GitLab's REST API (tests/promote/openapi_standin.py) that checks every request against the provider's
published OpenAPI description. One promotion opens one pull (merge) request with the decision's
markdown summary and the labels; a second promotion of the same change updates that one; a refusal of
the forge is exit 2 naming the provider and the status, with the branch left pushed and no token shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gate.decisions.store import open_store
from gate.errors import UsageError
from gate.promote.pulls import pull_target
from tests.conftest import Run
from tests.promote import openapi_standin
from tests.promote.openapi_standin import StandIn
from tests.promote.servers import Registry
from tests.promote.test_promote_cli import App, evaluate

GITHUB_TOKEN = "ghp_standin0000000000000000000000000000"
GITLAB_TOKEN = "glpat-standin00000000000000"


@pytest.fixture
def github() -> Iterator[StandIn]:
    standin = openapi_standin.start("github", GITHUB_TOKEN)
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def gitlab() -> Iterator[StandIn]:
    standin = openapi_standin.start("gitlab", GITLAB_TOKEN)
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(autouse=True)
def no_forge_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own forge tokens (a CI job's) never reach a stand-in or a test's output."""
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def markdown_of(decision_id: str) -> str:
    from gate.output import markdown

    store = open_store()
    try:
        decision = store.get(decision_id)
    finally:
        store.close()
    assert decision is not None
    return markdown.render(decision).rstrip()


def pr_args(standin: StandIn, repo: str) -> tuple[str, ...]:
    return ("--pr", "--pr-provider", standin.provider, "--pr-api-url", standin.api_url, "--pr-repo", repo,
            "--format", "json")


def test_github_pull_request_is_opened_once_then_updated(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, github: StandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    app = App(registry, tmp_path)
    first = evaluate(gate, data, app.source)

    run = app.promote(gate, first["decision_id"], *pr_args(github, "ops/deploy"))
    assert run.code == 0, run.err
    result = run.json()
    branch = result["gitops"]["branch"]
    assert branch.startswith("gate/promote-") and branch in app.remote.branches()
    assert app.remote.show(app.path) == app.remote.show(app.path, "main")  # main untouched: --pr-branch's write-back
    assert result["pull_request"] == {"provider": "github", "number": 1, "action": "created",
                                      "url": "https://github.com/ops/deploy/pull/1", "labels": ["gate", "env:prod"]}
    [pull] = github.open_pulls()
    assert (pull["head"], pull["base"], pull["labels"]) == (branch, "main", ["gate", "env:prod"])
    assert pull["body"].startswith(markdown_of(first["decision_id"]))
    assert app.image.digest in pull["body"] and result["gitops"]["commit"] in pull["body"]

    # a later decision for the same digest promotes the same change: same branch, the same pull request
    second = evaluate(gate, data, app.source)
    run = app.promote(gate, second["decision_id"], *pr_args(github, "ops/deploy"))
    assert run.code == 0, run.err
    again = run.json()
    assert again["gitops"]["branch"] == branch and again["gitops"]["status"] == "noop"
    assert again["pull_request"]["action"] == "updated" and again["pull_request"]["number"] == 1
    assert len(github.pulls) == 1
    assert github.pulls[1]["body"].startswith(markdown_of(second["decision_id"]))
    assert second["decision_id"] in github.pulls[1]["body"] and first["decision_id"] not in github.pulls[1]["body"]
    assert [c.operation for c in github.calls] == ["pulls/list", "pulls/create", "issues/add-labels",
                                                   "pulls/list", "pulls/update", "issues/add-labels"]
    assert github.calls[0].query == {"head": f"ops:{branch}", "base": "main", "state": "open"}
    assert github.problems == []

    text = app.promote(gate, second["decision_id"], *pr_args(github, "ops/deploy")[:-2])
    assert text.code == 0, text.err
    assert "Pull request: updated #1 https://github.com/ops/deploy/pull/1" in text.out and len(github.pulls) == 1


def test_gitlab_merge_request_is_opened_once_then_updated_with_labels_from_the_flag(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, gitlab: StandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    app = App(registry, tmp_path)
    first = evaluate(gate, data, app.source)
    labels = ("--pr-label", "release", "--pr-label", "env:prod")

    run = app.promote(gate, first["decision_id"], *pr_args(gitlab, "platform/ops/deploy"), *labels)
    assert run.code == 0, run.err
    result = run.json()
    assert result["pull_request"]["provider"] == "gitlab" and result["pull_request"]["action"] == "created"
    assert result["pull_request"]["url"].endswith("/platform/ops/deploy/-/merge_requests/1")
    [merge] = gitlab.open_pulls()
    assert (merge["source_branch"], merge["target_branch"]) == (result["gitops"]["branch"], "main")
    assert merge["labels"] == ["release", "env:prod"]
    assert merge["description"].startswith(markdown_of(first["decision_id"]))

    second = evaluate(gate, data, app.source)
    run = app.promote(gate, second["decision_id"], *pr_args(gitlab, "platform/ops/deploy"), *labels)
    assert run.code == 0, run.err
    assert run.json()["pull_request"]["action"] == "updated"
    assert len(gitlab.pulls) == 1 and second["decision_id"] in gitlab.pulls[1]["description"]
    # the project path travels URL-encoded as one path segment, as GitLab's :id wants
    assert {c.path for c in gitlab.calls} == {"/api/v4/projects/platform%2Fops%2Fdeploy/merge_requests",
                                              "/api/v4/projects/platform%2Fops%2Fdeploy/merge_requests/1"}
    assert gitlab.problems == []


def test_a_bad_token_is_exit_2_naming_github_and_401_without_the_token_and_the_branch_stays(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, github: StandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "ghp_wrongwrongwrongwrongwrongwrong0000"
    monkeypatch.setenv("GITHUB_TOKEN", wrong)
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)

    run = app.promote(gate, decision["decision_id"], *pr_args(github, "ops/deploy"))
    assert run.code == 2
    branch = run.json()["gitops"]["branch"]
    assert "github" in run.err and "401" in run.err and "Bad credentials" in run.err
    assert f"the branch {branch} stays pushed" in run.err
    assert branch in app.remote.branches() and app.released() == app.image.digest
    assert wrong not in run.out + run.err
    assert github.pulls == {} and github.problems == []


def test_a_refused_merge_request_is_exit_2_naming_gitlab_and_422(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, gitlab: StandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    gitlab.fail["POST postApiV4ProjectsIdMergeRequests"] = 422
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)

    run = app.promote(gate, decision["decision_id"], *pr_args(gitlab, "ops/deploy")[:-2])
    assert run.code == 2
    assert "gitlab" in run.err and "422" in run.err and "stays pushed" in run.err
    assert "PROMOTED" in run.out  # the promotion itself is done and printed
    assert GITLAB_TOKEN not in run.out + run.err
    assert gitlab.pulls == {} and gitlab.problems == []


def test_no_token_is_exit_2_before_anything_is_pushed(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, github: StandIn
) -> None:
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)

    run = app.promote(gate, decision["decision_id"], *pr_args(github, "ops/deploy"))
    assert run.code == 2 and "GITHUB_TOKEN or GH_TOKEN" in run.err
    assert app.remote.branches() == ["main"] and app.released() is None and github.calls == []


def test_the_standin_refuses_what_the_description_does_not_allow(github: StandIn, gitlab: StandIn) -> None:
    """The checks are real: an undeclared query parameter, a body of the wrong shape and an unknown
    path are refused and recorded, whatever the token."""
    with httpx.Client(base_url=github.api_url, headers={"Authorization": f"Bearer {GITHUB_TOKEN}"}) as client:
        assert client.get("/repos/o/r/pulls", params={"head_branch": "x"}).status_code == 400
        assert client.post("/repos/o/r/pulls", json={"title": 7, "head": "x", "base": "main"}).status_code == 400
        assert client.post("/repos/o/r/issues/1/labels", json={"labels": []}).status_code == 400
        assert client.patch("/repos/o/r/pulls/1", json={"description": "GitLab's name"}).status_code == 400
    with httpx.Client(base_url=gitlab.api_url, headers={"PRIVATE-TOKEN": GITLAB_TOKEN}) as client:
        assert client.get("/projects/1/merge_requests", params={"state": "open"}).status_code == 400
        assert client.post("/projects/1/merge_requests", json={"title": "t"}).status_code == 400
        assert client.put("/projects/1/merge_requests/x", json={}).status_code == 400
        assert client.get("/projects/1/pulls").status_code == 404
    assert any("head_branch" in p for p in github.problems)
    assert any("body field 'description' is not declared by pulls/update" in p for p in github.problems)
    assert any("title" in p for p in github.problems)
    assert any("'open' is not one of" in p for p in gitlab.problems)
    assert any("source_branch" in p for p in gitlab.problems)
    assert len(github.problems) >= 4 and len(gitlab.problems) >= 4


@pytest.mark.parametrize(("remote", "flags", "expected"), [
    ("https://github.com/ops/deploy.git", {}, ("github", "https://api.github.com", "ops/deploy")),
    ("git@github.com:ops/deploy.git", {}, ("github", "https://api.github.com", "ops/deploy")),
    ("https://x-access-token:sekrit@github.com/ops/deploy", {}, ("github", "https://api.github.com", "ops/deploy")),
    ("https://git.corp.example/ops/deploy.git", {"provider": "github"},
     ("github", "https://git.corp.example/api/v3", "ops/deploy")),
    ("https://gitlab.com/platform/ops/deploy.git", {}, ("gitlab", "https://gitlab.com/api/v4", "platform/ops/deploy")),
    ("ssh://git@gitlab.internal:2222/ops/deploy.git", {"provider": "gitlab", "api_url": "https://gl.internal/api/v4/"},
     ("gitlab", "https://gl.internal/api/v4", "ops/deploy")),
])
def test_the_forge_api_and_repository_come_from_the_gitops_url(
    remote: str, flags: dict[str, str], expected: tuple[str, str, str]
) -> None:
    env = {"GH_TOKEN": "t1", "CI_JOB_TOKEN": "t2"}
    target = pull_target(remote, env=env, **flags)
    assert (target.provider, target.api_url, target.repository) == expected
    assert target.token_source == ("GH_TOKEN" if expected[0] == "github" else "CI_JOB_TOKEN")
    assert "t1" not in repr(target) and "t2" not in repr(target)


@pytest.mark.parametrize(("remote", "flags", "message"), [
    ("https://git.corp.example/ops/deploy.git", {}, "give --pr-provider"),
    ("file:///srv/git/deploy.git", {"provider": "github"}, "give --pr-api-url"),
    ("file:///srv/git/deploy.git", {"provider": "github", "api_url": "http://127.0.0.1:1"}, "give --pr-repo"),
    ("https://github.com/ops/deploy.git", {"repository": "a/b/c"}, "OWNER/NAME"),
])
def test_an_unknown_forge_or_repository_is_a_usage_error(remote: str, flags: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        pull_target(remote, env={"GITHUB_TOKEN": "t"}, **flags)


def test_an_unreachable_forge_is_a_pull_request_error_naming_it_without_the_token() -> None:
    from gate.promote.pulls import PullRequestError, PullTarget, open_or_update
    from tests.promote.gitrepo import free_port

    target = PullTarget("gitlab", f"http://127.0.0.1:{free_port()}/api/v4", "ops/deploy", "GITLAB_TOKEN", GITLAB_TOKEN)
    with pytest.raises(PullRequestError) as failure:
        open_or_update(target, branch="gate/promote-1", base="main", title="t", body="b", labels=["gate"])
    assert failure.value.diagnostics().startswith("gitlab: merge request for gate/promote-1: ConnectError")
    assert GITLAB_TOKEN not in failure.value.diagnostics()


def test_an_answer_without_the_promised_fields_is_a_pull_request_error_not_a_traceback() -> None:
    """A --pr-api-url that is not the forge's API (here: a server answering [{}] to everything)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gate.promote.pulls import PullRequestError, PullTarget, open_or_update

    class Anything(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"[{}]")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Anything)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = PullTarget("github", f"http://127.0.0.1:{server.server_address[1]}", "ops/deploy", "GH_TOKEN", "tok")
        with pytest.raises(PullRequestError, match="github: pull request for b: the answer lacks 'number'"):
            open_or_update(target, branch="b", base="main", title="t", body="b", labels=[])
    finally:
        server.shutdown()
        server.server_close()
