"""The git half of `gate promote`: commits, trailers, races, branches, signatures and rollback holds.

The GitOps remote is a real bare repository over file:// (one test over `git daemon` on 127.0.0.1);
the YAML edit is a small idempotent regex edit from gitrepo.py standing in for edit.py.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gate.errors import GitOpsError, UsageError
from gate.promote.gitops import (
    CommitSpec,
    build_message,
    find_hold,
    write_back,
)
from tests.promote.gitrepo import (
    Remote,
    free_port,
    git,
    git_daemon,
    make_remote,
    person_clone,
    person_commit,
    person_revert,
    set_image,
    set_line,
    trailers,
)

DATA = Path(__file__).parent.parent / "data" / "gitrepo"
DEPLOYMENT = (DATA / "k8s-deployment-podinfo-frontend.yaml").read_text()
PATH = "apps/frontend/deployment.yaml"
OLD = "ghcr.io/stefanprodan/podinfo:6.14.1"
D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")
NEW1, NEW2, NEW3 = (f"ghcr.io/stefanprodan/podinfo:6.15.{i}@{d}" for i, d in enumerate((D1, D2, D3)))


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A GitOps remote with the podinfo Deployment and an unrelated README."""
    return make_remote(tmp_path, {PATH: DEPLOYMENT, "README.md": "GitOps repo\n"})


def spec(digest: str, decision: str = "dec-1", *, old: str | None = OLD, new: str = NEW1,
         extra: dict[str, str] | None = None) -> CommitSpec:
    """A CommitSpec with the default message for a promotion of ``digest``."""
    message = build_message(None, image="ghcr.io/stefanprodan/podinfo", old=old, new=new, environment="prod",
                            decision_id=decision, policy_revision="r42", digest=digest, path=PATH,
                            extra_trailers=extra)
    return CommitSpec(message, author_name="gate-bot", author_email="gate-bot@ci.example")


def promote(remote: Remote, new: str, digest: str, decision: str = "dec-1", **kw: object) -> str:
    """Gate promotes ``new`` into PATH; the new commit's sha."""
    extra = kw.pop("extra", None)
    result = write_back(remote.url, PATH, set_image(new), spec(digest, decision, new=new, extra=extra), **kw)  # type: ignore[arg-type]
    assert result.status == "committed", result
    assert result.commit
    return result.commit


# --- build_message ---------------------------------------------------------------------------------

def test_default_message_is_exact_and_trailers_parse_as_git_reads_them() -> None:
    message = build_message(None, image="ghcr.io/x/app", old="ghcr.io/x/app:1.0", new=f"ghcr.io/x/app:1.1@{D1}",
                            environment="prod", decision_id="dec-7", policy_revision=None, digest=D1,
                            path="deploy/app.yaml", extra_trailers={"Gate-Override-Hold": "true"})
    assert message == (
        "promote ghcr.io/x/app to prod: 1.0 -> 1.1\n\n"
        f"ghcr.io/x/app\n  from ghcr.io/x/app:1.0\n  to   ghcr.io/x/app:1.1@{D1}\n\n"
        "Decision: dec-7\nPolicy revision: (none)\n\n"
        f"Gate-Decision: dec-7\nGate-Image-Digest: {D1}\nGate-Environment: prod\nGate-Path: deploy/app.yaml\n"
        "Gate-Override-Hold: true\n")
    parsed = git("interpret-trailers", "--parse", input=message).splitlines()
    assert parsed == ["Gate-Decision: dec-7", f"Gate-Image-Digest: {D1}", "Gate-Environment: prod",
                      "Gate-Path: deploy/app.yaml", "Gate-Override-Hold: true"]


def test_template_fields_and_short_forms() -> None:
    message = build_message("{environment}: {old_short} => {new_short} ({decision_id})", image="r/app",
                            old=None, new=f"r/app@{D2}", environment="stage", decision_id="d",
                            policy_revision="p", digest=D2, path="a.yaml")
    assert message.splitlines()[0] == "stage: (none) => sha256:bbbbbbbbbbbb (d)"
    assert message.endswith("Gate-Path: a.yaml\n")


@pytest.mark.parametrize("template, named", [("{image} {colour}", "{colour}"), ("{image.upper}", "{image.upper}"),
                                              ("{0}", "{0}")])
def test_unknown_template_field_is_a_usage_error_naming_it(template: str, named: str) -> None:
    with pytest.raises(UsageError, match=named.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        build_message(template, image="i", old=None, new="n", environment="e", decision_id="d",
                      policy_revision=None, digest=D1, path="p")


def test_a_trailer_value_cannot_smuggle_extra_lines() -> None:
    with pytest.raises(UsageError, match="Gate-Environment"):
        build_message(None, image="i", old=None, new="n", environment="prod\nGate-Override-Hold: true",
                      decision_id="d", policy_revision=None, digest=D1, path="p")


# --- write_back: the commit ------------------------------------------------------------------------

def test_commit_lands_with_exact_trailers_author_and_only_the_edit(remote: Remote) -> None:
    before = remote.head()
    result = write_back(remote.url, PATH, set_image(NEW1), spec(D1))
    assert (result.status, result.branch, result.attempts) == ("committed", "main", 1)
    assert result.commit == remote.head() and remote.log("%P", "-1") == before
    assert trailers(remote) == ["Gate-Decision: dec-1", f"Gate-Image-Digest: {D1}", "Gate-Environment: prod",
                                f"Gate-Path: {PATH}"]
    assert remote.log("%(trailers:key=Gate-Decision,valueonly)", "-1").strip() == "dec-1"
    assert remote.log("%an <%ae>|%cn <%ce>", "-1") == "gate-bot <gate-bot@ci.example>|gate-bot <gate-bot@ci.example>"
    assert remote.log("%s", "-1") == "promote ghcr.io/stefanprodan/podinfo to prod: 6.14.1 -> 6.15.0"
    assert remote.show(PATH) + "\n" == DEPLOYMENT.replace(f"image: {OLD}", f"image: {NEW1}")
    assert git("diff", "--name-only", before, "main", cwd=remote.bare) == PATH
    assert f"-        image: {OLD}\n+        image: {NEW1}\n" in result.diff
    assert result.diff.startswith(f"--- a/{PATH}\n+++ b/{PATH}\n")


def test_a_callable_message_is_built_after_the_edit_of_each_attempt(remote: Remote, tmp_path: Path) -> None:
    seen: list[str] = []

    def edit(text: str) -> tuple[str, bool]:
        old = text.split("image: ", 1)[1].split("\n", 1)[0]
        seen.append(old)
        if len(seen) == 1:  # a person moves the image while we work: the message must name their value
            person_commit(remote, tmp_path, PATH, text.replace(OLD, OLD + "-hotfix"), "hotfix")
        return set_image(NEW1)(text)

    result = write_back(remote.url, PATH, edit, CommitSpec(lambda: f"from {seen[-1]}"))
    assert result.attempts == 2 and remote.log("%s", "-1") == f"from {OLD}-hotfix"


def test_unchanged_file_is_a_noop_and_the_remote_does_not_move(remote: Remote) -> None:
    promote(remote, NEW1, D1)
    head = remote.head()
    result = write_back(remote.url, PATH, set_image(NEW1), spec(D1, "dec-2"))
    assert (result.status, result.commit, result.diff, result.attempts) == ("noop", None, "", 0)
    assert remote.head() == head


def test_dry_run_returns_the_diff_and_leaves_the_remote_alone(remote: Remote, tmp_path: Path) -> None:
    head = remote.head()
    result = write_back(remote.url, PATH, set_image(NEW1), spec(D1), dry_run=True, workdir=tmp_path / "cache")
    assert (result.status, result.commit, result.attempts) == ("dry-run", None, 0)
    assert f"+        image: {NEW1}" in result.diff
    assert remote.head() == head and remote.branches() == ["main"]
    # the cached clone is reused, and a dry run left nothing behind in it that would leak into a commit
    assert write_back(remote.url, PATH, set_image(NEW1), spec(D1), workdir=tmp_path / "cache").status == "committed"
    assert remote.count() == 2


def test_cached_clone_is_fetched_not_recloned_and_sees_new_commits(remote: Remote, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    promote(remote, NEW1, D1, workdir=cache)
    clones = [p for p in cache.iterdir() if p.is_dir()]
    marker = clones[0] / ".git" / "gate-test-marker"
    marker.write_text("same clone")
    person_commit(remote, tmp_path, "README.md", "changed by a person\n", "docs")
    sha = promote(remote, NEW2, D2, "dec-2", workdir=cache)
    assert [p for p in cache.iterdir() if p.is_dir()] == clones and marker.exists()
    assert remote.log("%H %s", "-2").splitlines()[1].endswith(" docs") and remote.head() == sha
    assert remote.show("README.md") == "changed by a person"


# --- write_back: races ----------------------------------------------------------------------------

def test_commit_pushed_by_someone_else_in_between_is_kept_and_the_edit_reapplied(remote: Remote,
                                                                                 tmp_path: Path) -> None:
    calls = []
    edit = set_image(NEW1)

    def racing_edit(text: str) -> tuple[str, bool]:
        calls.append(text)
        if len(calls) == 1:  # between our clone and our push, a person pushes another file
            person_commit(remote, tmp_path, "apps/other.yaml", "replicas: 3\n", "scale other")
        return edit(text)

    result = write_back(remote.url, PATH, racing_edit, spec(D1))
    assert (result.status, result.attempts, len(calls)) == ("committed", 2, 2)
    assert remote.count() == 3 and remote.log("%s", "-1", "--skip=1") == "scale other"
    assert remote.show("apps/other.yaml") == "replicas: 3" and f"image: {NEW1}" in remote.show(PATH)


def test_a_concurrent_change_to_the_same_file_merges_by_reapplying_the_edit(remote: Remote, tmp_path: Path) -> None:
    calls = 0

    def racing_edit(text: str) -> tuple[str, bool]:
        nonlocal calls
        calls += 1
        if calls == 1:
            person_commit(remote, tmp_path, PATH, text.replace("revisionHistoryLimit: 5", "revisionHistoryLimit: 9"),
                          "keep more history")
        return set_image(NEW1)(text)

    assert write_back(remote.url, PATH, racing_edit, spec(D1)).attempts == 2
    text = remote.show(PATH)
    assert "revisionHistoryLimit: 9" in text and f"image: {NEW1}" in text


def test_a_racer_that_already_set_the_value_turns_the_retry_into_a_noop(remote: Remote, tmp_path: Path) -> None:
    calls = 0

    def racing_edit(text: str) -> tuple[str, bool]:
        nonlocal calls
        calls += 1
        new, changed = set_image(NEW1)(text)
        if calls == 1:
            person_commit(remote, tmp_path, PATH, new, "same promotion by hand")
        return new, changed

    result = write_back(remote.url, PATH, racing_edit, spec(D1))
    assert (result.status, result.attempts) == ("noop", 1)
    assert remote.log("%s", "-1") == "same promotion by hand"


def test_exhausted_attempts_is_a_gitops_error(remote: Remote, tmp_path: Path) -> None:
    n = 0

    def always_raced(text: str) -> tuple[str, bool]:
        nonlocal n
        n += 1
        person_commit(remote, tmp_path, "apps/churn.yaml", f"n: {n}\n", f"churn {n}")
        return set_image(NEW1)(text)

    with pytest.raises(GitOpsError, match="still rejected after 3 attempts") as err:
        write_back(remote.url, PATH, always_raced, spec(D1), max_attempts=3)
    assert n == 3 and f"image: {OLD}" in remote.show(PATH)
    assert "\n" not in err.value.diagnostics()


def test_twenty_writers_at_once_all_land_once(tmp_path: Path) -> None:
    keys = [f"app-{i:02d}" for i in range(20)]
    remote = make_remote(tmp_path, {"images.yaml": "".join(f"{k}: old\n" for k in keys)})
    errors: list[BaseException] = []
    results = {}
    start = threading.Barrier(len(keys))

    def writer(key: str) -> None:
        try:
            start.wait()
            message = build_message(None, image=key, old="old", new=f"{key}@{D1}", environment="prod",
                                    decision_id=f"dec-{key}", policy_revision=None, digest=D1, path="images.yaml")
            results[key] = write_back(remote.url, "images.yaml", set_line(key, f"new-{key}"), CommitSpec(message))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert remote.count() == 21
    decisions = remote.log("%(trailers:key=Gate-Decision,valueonly)").split()
    assert sorted(decisions) == sorted(f"dec-{k}" for k in keys)
    assert remote.show("images.yaml") + "\n" == "".join(f"{k}: new-{k}\n" for k in keys)
    assert {r.commit for r in results.values()} == set(remote.log("%H", "-20").split())
    assert sum(r.attempts for r in results.values()) >= 20


def test_writers_sharing_one_cache_folder_take_turns(tmp_path: Path) -> None:
    keys = [f"svc-{i}" for i in range(4)]
    remote = make_remote(tmp_path, {"images.yaml": "".join(f"{k}: old\n" for k in keys)})
    errors: list[BaseException] = []

    def writer(key: str) -> None:
        try:
            write_back(remote.url, "images.yaml", set_line(key, "new"), CommitSpec(f"set {key}"),
                       workdir=tmp_path / "shared-cache")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert remote.count() == 5 and remote.show("images.yaml") + "\n" == "".join(f"{k}: new\n" for k in keys)


def test_a_cache_folder_that_cannot_be_made_is_a_gitops_error(remote: Remote, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(GitOpsError, match="cannot prepare the local clone"):
        write_back(remote.url, PATH, set_image(NEW1), spec(D1), workdir=blocker / "cache")


# --- mode="branch" --------------------------------------------------------------------------------

def test_branch_mode_twice_opens_one_branch_and_the_second_is_a_noop(remote: Remote, tmp_path: Path) -> None:
    main = remote.head()
    first = write_back(remote.url, PATH, set_image(NEW1), spec(D1), mode="branch", change_key=f"prod {D1}")
    assert first.status == "committed" and first.branch.startswith("gate/promote-") and len(first.branch) == 25
    assert remote.head() == main and sorted(remote.branches()) == sorted(["main", first.branch])
    assert remote.head(first.branch) == first.commit and f"image: {NEW1}" in remote.show(PATH, first.branch)
    person_commit(remote, tmp_path, "README.md", "moved on\n", "main moves on")  # the base moving does not matter
    second = write_back(remote.url, PATH, set_image(NEW1), spec(D1, "dec-2"), mode="branch", change_key=f"prod {D1}",
                        workdir=tmp_path / "cache")
    assert (second.status, second.branch, second.commit) == ("noop", first.branch, None)
    assert len(remote.branches()) == 2 and remote.head(first.branch) == first.commit
    other = write_back(remote.url, PATH, set_image(NEW2), spec(D2, "dec-3", new=NEW2), mode="branch",
                       change_key=f"prod {D2}")
    assert other.status == "committed" and other.branch != first.branch and len(remote.branches()) == 3


def test_branch_mode_when_the_base_already_has_the_value_is_a_noop(remote: Remote) -> None:
    promote(remote, NEW1, D1)
    result = write_back(remote.url, PATH, set_image(NEW1), spec(D1), mode="branch", change_key="k")
    assert (result.status, result.branch) == ("noop", "main") and remote.branches() == ["main"]


# --- signatures -----------------------------------------------------------------------------------

@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    """A throwaway ed25519 key for ssh commit signing (ssh-keygen: Debian openssh-client, which .ci/run installs)."""
    assert shutil.which("ssh-keygen"), "ssh-keygen (Debian openssh-client) is needed to make an ssh signing key"
    key = tmp_path / "signing_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gate-bot", "-f", str(key)], check=True)
    return key


def _signature_status(remote: Remote, key: Path, tmp_path: Path) -> str:
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"gate-bot@ci.example {key.with_suffix('.pub').read_text()}")
    return git("-c", f"gpg.ssh.allowedSignersFile={allowed}", "log", "-1", "--format=%G?", "main", cwd=remote.bare)


def test_commit_gpgsign_in_the_clone_config_signs_the_commit(remote: Remote, ssh_key: Path, tmp_path: Path) -> None:
    config = {"gpg.format": "ssh", "user.signingkey": str(ssh_key.with_suffix(".pub")), "commit.gpgsign": "true"}
    write_back(remote.url, PATH, set_image(NEW1), spec(D1), git_config=config)
    assert _signature_status(remote, ssh_key, tmp_path) == "G"


def test_sign_true_forces_a_signature_and_unsigned_by_default(remote: Remote, ssh_key: Path, tmp_path: Path) -> None:
    config = {"gpg.format": "ssh", "user.signingkey": str(ssh_key.with_suffix(".pub"))}
    write_back(remote.url, PATH, set_image(NEW1), spec(D1), git_config=config)
    assert _signature_status(remote, ssh_key, tmp_path) == "N"
    write_back(remote.url, PATH, set_image(NEW2), spec(D2, new=NEW2), git_config=config, sign=True)
    assert _signature_status(remote, ssh_key, tmp_path) == "G"


# --- failures: one line, no credentials -----------------------------------------------------------

def test_missing_file_names_repo_and_path(remote: Remote) -> None:
    with pytest.raises(GitOpsError) as err:
        write_back(remote.url, "apps/missing.yaml", set_image(NEW1), spec(D1))
    assert err.value.diagnostics() == f"{remote.url}: apps/missing.yaml not found on branch main"


def test_bad_branch_and_empty_repo_are_gitops_errors(remote: Remote, tmp_path: Path) -> None:
    with pytest.raises(GitOpsError, match=r"has no branch 'release'"):
        write_back(remote.url, PATH, set_image(NEW1), spec(D1), branch="release")
    empty = tmp_path / "empty.git"
    git("init", "--quiet", "--bare", str(empty))
    with pytest.raises(GitOpsError, match="is empty: cannot edit"):
        write_back(empty.as_uri(), PATH, set_image(NEW1), spec(D1))


def test_unreachable_repo_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(GitOpsError) as err:
        write_back((tmp_path / "nowhere.git").as_uri(), PATH, set_image(NEW1), spec(D1))
    text = err.value.diagnostics()
    assert "\n" not in text and text.startswith(f"{(tmp_path / 'nowhere.git').as_uri()}: reaching the repository")


def test_path_outside_the_repository_is_refused(remote: Remote) -> None:
    with pytest.raises(GitOpsError, match="must be relative and inside"):
        write_back(remote.url, "../escape.yaml", set_image(NEW1), spec(D1))


def test_push_refused_by_the_remote_is_not_retried(remote: Remote) -> None:
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: open a pull request' >&2\nexit 1\n")
    hook.chmod(0o755)
    calls: list[str] = []

    def edit(text: str) -> tuple[str, bool]:
        calls.append(text)
        return set_image(NEW1)(text)

    with pytest.raises(GitOpsError, match="push to main failed: .*main is protected") as err:
        write_back(remote.url, PATH, edit, spec(D1))
    assert len(calls) == 1 and "\n" not in err.value.diagnostics()


class _Refuse401(BaseHTTPRequestHandler):
    """A stand-in HTTP git host that answers every request 401 (git's smart-HTTP auth challenge)."""

    def do_GET(self) -> None:  # http.server names it
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="gitops"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_credentials_in_the_url_never_reach_a_message(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse401)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        messages = []
        for url in (f"http://user:s3cr%40t-token@127.0.0.1:{port}/gitops.git",   # refused credentials
                    f"http://user:s3cr%40t-token@127.0.0.1:{free_port()}/gitops.git"):  # nobody listening
            with pytest.raises(GitOpsError) as err:
                write_back(url, PATH, set_image(NEW1), spec(D1), workdir=tmp_path / "cache")
            messages.append(err.value.diagnostics())
    finally:
        server.shutdown()
        server.server_close()
    assert all("s3cr" not in m and "user:" not in m and "\n" not in m for m in messages), messages
    assert messages[0].startswith(f"http://127.0.0.1:{port}/gitops.git: ")
    assert "Authentication failed" in messages[0]


def test_invalid_mode_is_a_usage_error(remote: Remote) -> None:
    with pytest.raises(UsageError, match="mode"):
        write_back(remote.url, PATH, set_image(NEW1), spec(D1), mode="merge")


@pytest.mark.parametrize("branch", ["--delete", "main:refs/heads/other", "a..b", "x.lock", "rel/", ""])
def test_a_branch_that_is_not_a_plain_name_is_refused(remote: Remote, branch: str) -> None:
    with pytest.raises(UsageError, match="not a plain branch name"):
        write_back(remote.url, PATH, set_image(NEW1), spec(D1), branch=branch)
    with pytest.raises(UsageError, match="not a plain branch name"):
        find_hold(remote.url, PATH, D1, branch=branch)


# --- find_hold ------------------------------------------------------------------------------------

def test_a_human_revert_of_a_gate_commit_holds_the_digest(remote: Remote, tmp_path: Path) -> None:
    promote(remote, NEW1, D1, "dec-1")
    bad = promote(remote, NEW2, D2, "dec-2")
    revert = person_revert(remote, tmp_path, bad)
    hold = find_hold(remote.url, PATH, D2)
    assert hold is not None and hold.commit == revert
    day = remote.log("%as", "-1")
    assert hold.reason == (f"commit {revert[:7]} by Alice ({day}) reverted sha256:bbbbbbbbbbbb… at {PATH}: "
                           "'Revert \"promote ghcr.io/stefanprodan/podinfo to prod: 6.14.1 -> 6.15.1\"'")
    assert find_hold(remote.url, PATH, D1) is None  # the revert brought D1 back: that one is fine


def test_a_person_moving_the_image_back_without_trailers_holds(remote: Remote, tmp_path: Path) -> None:
    promote(remote, NEW1, D1)
    text = remote.show(PATH) + "\n"
    human = person_commit(remote, tmp_path, PATH, text.replace(NEW1, OLD), "roll frontend back, 6.15 leaks memory")
    hold = find_hold(remote.url, PATH, D1)
    assert hold is not None and hold.commit == human
    assert " removed sha256:aaaaaaaaaaaa… at " in hold.reason and hold.reason.endswith("6.15 leaks memory'")
    # an unrelated later edit of the same file does not lift the hold
    person_commit(remote, tmp_path, PATH, remote.show(PATH) + "\n# note\n", "comment")
    held = find_hold(remote.url, PATH, D1, workdir=tmp_path / "cache")
    assert held is not None and held.commit == human


def test_gate_repromotion_with_override_clears_the_hold(remote: Remote, tmp_path: Path) -> None:
    bad = promote(remote, NEW1, D1)
    person_revert(remote, tmp_path, bad)
    assert find_hold(remote.url, PATH, D1) is not None
    again = promote(remote, NEW1, D1, "dec-9", extra={"Gate-Override-Hold": "true"})
    assert "Gate-Override-Hold: true" in trailers(remote, again)
    assert find_hold(remote.url, PATH, D1) is None


def test_unrelated_human_commit_and_gate_moving_on_do_not_hold(remote: Remote, tmp_path: Path) -> None:
    promote(remote, NEW1, D1)
    person_commit(remote, tmp_path, PATH, remote.show(PATH).replace("minReadySeconds: 3", "minReadySeconds: 5") + "\n",
                  "slower rollout")
    person_commit(remote, tmp_path, "README.md", f"we run {D1}\n", "docs")
    assert find_hold(remote.url, PATH, D1) is None
    promote(remote, NEW2, D2, "dec-2")  # gate replaced D1 by D2: D1 is not rolled back, just superseded
    assert find_hold(remote.url, PATH, D1) is None
    assert find_hold(remote.url, PATH, D3) is None  # never in the file


def test_find_hold_uses_the_mentions_predicate(remote: Remote, tmp_path: Path) -> None:
    promote(remote, NEW1, D1)
    person_commit(remote, tmp_path, PATH, remote.show(PATH).replace(NEW1, OLD) + "\n", "back")
    assert find_hold(remote.url, PATH, D1, mentions=lambda text: "6.15.0" in text) is not None
    assert find_hold(remote.url, PATH, D1, mentions=lambda text: "6.99" in text) is None


def test_find_hold_errors_on_a_bad_branch(remote: Remote) -> None:
    with pytest.raises(GitOpsError, match="has no branch 'prod'"):
        find_hold(remote.url, PATH, D1, branch="prod")


def test_a_revert_merged_through_a_pull_request_holds(remote: Remote, tmp_path: Path) -> None:
    bad = promote(remote, NEW1, D1)
    with person_clone(remote, tmp_path) as work:
        git("checkout", "-q", "-b", "revert-it", cwd=work)
        git("revert", "--no-edit", bad, cwd=work)
        git("checkout", "-q", "main", cwd=work)
        git("merge", "--no-ff", "-q", "-m", "Merge pull request #7 from alice/revert-it", "revert-it", cwd=work)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
        merge = git("rev-parse", "HEAD", cwd=work)
    hold = find_hold(remote.url, PATH, D1)
    assert hold is not None and hold.commit == merge and "Merge pull request #7" in hold.reason


# --- over git daemon ------------------------------------------------------------------------------

@pytest.mark.server
def test_write_back_and_find_hold_over_git_daemon(tmp_path: Path) -> None:
    repos = tmp_path / "served"
    repos.mkdir()
    remote = make_remote(repos, {PATH: DEPLOYMENT})
    with git_daemon(repos) as base:
        url = f"{base}/{remote.bare.name}"
        first = write_back(url, PATH, set_image(NEW1), spec(D1), workdir=tmp_path / "cache")
        assert first.status == "committed" and remote.head() == first.commit
        person_revert(remote, tmp_path, first.commit)
        hold = find_hold(url, PATH, D1, workdir=tmp_path / "cache")
        assert hold is not None and hold.commit == remote.head()
        branch = write_back(url, PATH, set_image(NEW2), spec(D2, new=NEW2), mode="branch", change_key="x",
                            workdir=tmp_path / "cache")
        assert branch.status == "committed" and remote.head(branch.branch) == branch.commit
