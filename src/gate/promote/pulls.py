"""Open, or update, the pull request (GitHub) or merge request (GitLab) for a promotion branch.

``gate promote --pr`` pushes the promotion branch exactly as ``--pr-branch`` does, then asks the
forge for the one open request from that branch into the base branch: found, its title, body and
labels are brought up to date (so a re-run never opens a second one); not found, it is created.

The client is a few httpx calls, not PyGithub or python-gitlab: four operations per forge, each
checked in the tests against the forge's published OpenAPI description (tests/data/openapi), and
no new dependency. The token travels only in a request header and never appears in a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from gate.errors import PromotionError, UsageError

__all__ = ["PullRequest", "PullRequestError", "PullTarget", "open_or_update", "pull_target"]

logger = logging.getLogger(__name__)

PROVIDERS = ("github", "gitlab")
#: GitHub refuses a body over 65536 characters; GitLab's limit (1 MiB) is far above this
MAX_BODY = 60000
_TOKEN_VARIABLES = {"github": ("GITHUB_TOKEN", "GH_TOKEN"), "gitlab": ("GITLAB_TOKEN", "CI_JOB_TOKEN")}
_TIMEOUT = 30.0


class PullRequestError(PromotionError):
    """The forge refused or failed a pull-request call (the promotion branch is already pushed)."""


@dataclass(frozen=True)
class PullTarget:
    """Where the pull request goes: the forge, its API base and the repository (GitLab: project path)."""

    provider: str
    api_url: str
    repository: str
    #: which variable the token came from (for messages; the token itself is never shown)
    token_source: str
    token: str = ""

    def __repr__(self) -> str:  # a dataclass repr would show the token
        return f"PullTarget({self.provider}, {self.api_url}, {self.repository}, token from {self.token_source})"


@dataclass(frozen=True)
class PullRequest:
    """The request as the forge answered: ``action`` is ``created`` or ``updated``."""

    provider: str
    number: int
    url: str
    action: str
    labels: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "number": self.number, "url": self.url, "action": self.action,
                "labels": list(self.labels)}


def _remote_parts(remote: str) -> tuple[str | None, str | None, str | None]:
    """``(scheme, host, path)`` of a git remote URL, also of scp-like ``git@host:owner/repo.git``."""
    scp = re.fullmatch(r"(?:[^@/\s]+@)?([^:/\s]+):(?!//)([^\s]+)", remote)
    if scp and "://" not in remote:
        return "ssh", scp.group(1), scp.group(2)
    parts = urlsplit(remote)
    if not parts.scheme or parts.scheme == "file":
        return parts.scheme or None, None, parts.path or None
    return parts.scheme, parts.hostname, parts.path


def _repository_path(path: str | None) -> str | None:
    """``owner/repo`` (GitLab: ``group/sub/project``) from a remote URL's path."""
    if not path:
        return None
    cleaned = path.strip("/").removesuffix(".git").strip("/")
    return cleaned if cleaned.count("/") >= 1 else None


def pull_target(remote: str, *, provider: str | None = None, api_url: str | None = None,
                repository: str | None = None, env: Mapping[str, str] | None = None) -> PullTarget:
    """The pull-request target for the GitOps remote ``remote``: the provider from the host
    (github.com, gitlab.com, or ``provider``), the API base (api.github.com, ``https://HOST/api/v3``
    for GitHub Enterprise, ``https://HOST/api/v4`` for GitLab, or ``api_url``), the repository from
    the URL's path (or ``repository``) and the token from the provider's variables.

    Anything missing is a UsageError before anything is pushed."""
    import os

    variables = os.environ if env is None else env
    scheme, host, path = _remote_parts(remote)
    if provider is not None and provider not in PROVIDERS:
        raise UsageError(f"--pr-provider {provider!r}: give github or gitlab")
    if provider is None:
        if host == "github.com":
            provider = "github"
        elif host == "gitlab.com":
            provider = "gitlab"
        else:
            where = f"host {host}" if host else "a local repository"
            raise UsageError(f"--pr: cannot tell the forge of {where}: give --pr-provider github or gitlab")
    if api_url is None:
        if host is None:
            raise UsageError(f"--pr: the GitOps repository is {_shown(remote)}: give --pr-api-url")
        if provider == "github":
            api_url = "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"
        else:
            api_url = f"https://{host}/api/v4"
    elif not re.match(r"https?://[^/\s]+", api_url):
        raise UsageError(f"--pr-api-url {api_url!r}: give an http(s) URL")
    repository = repository or _repository_path(path if host else None)
    if not repository or repository.count("/") < 1 or any(not part for part in repository.split("/")):
        raise UsageError("--pr: cannot tell the repository from the GitOps URL: give --pr-repo OWNER/NAME")
    if provider == "github" and repository.count("/") != 1:
        raise UsageError(f"--pr-repo {repository!r}: a GitHub repository is OWNER/NAME")
    names = _TOKEN_VARIABLES[provider]
    for name in names:
        if variables.get(name):
            return PullTarget(provider, api_url.rstrip("/"), repository, name, variables[name])
    raise UsageError(f"--pr: set {' or '.join(names)} to a token that may open {_noun(provider)}s")


def _shown(remote: str) -> str:
    from gate.redact import redact_url

    return redact_url(remote)


def _noun(provider: str) -> str:
    return "pull request" if provider == "github" else "merge request"


def open_or_update(target: PullTarget, *, branch: str, base: str, title: str, body: str,
                   labels: Sequence[str]) -> PullRequest:
    """The one open request from ``branch`` into ``base``: updated when it exists, else created.

    Any refusal or failure of the forge is a PullRequestError naming the provider and the status;
    the caller says that the branch stays."""
    import httpx

    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n*(cut: the summary is longer than a pull request body may be)*\n"
    headers = {"User-Agent": "gate"}
    if target.provider == "github":
        headers |= {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                    "Authorization": f"Bearer {target.token}"}
    elif target.token_source == "CI_JOB_TOKEN":
        headers["JOB-TOKEN"] = target.token
    else:
        headers["PRIVATE-TOKEN"] = target.token
    try:
        with httpx.Client(base_url=target.api_url, headers=headers, timeout=_TIMEOUT,
                          follow_redirects=False) as client:
            forge = _GitHub(client, target) if target.provider == "github" else _GitLab(client, target)
            opened = forge.open_or_update(branch, base, title, body, tuple(dict.fromkeys(labels)))
    except httpx.HTTPError as e:
        from gate.redact import redact

        raise PullRequestError(redact(f"{target.provider}: {_noun(target.provider)} for {branch}: "
                                      f"{type(e).__name__}: {e}", [target.token])) from None
    except (KeyError, TypeError, ValueError) as e:  # a 2xx answer without the fields the API promises
        raise PullRequestError(f"{target.provider}: {_noun(target.provider)} for {branch}: the answer lacks "
                               f"{e}: is --pr-api-url the forge's API?") from None
    logger.info("%s %s #%d for %s: %s", opened.action, _noun(target.provider), opened.number, branch, opened.url)
    return opened


class _Forge:
    def __init__(self, client: Any, target: PullTarget) -> None:
        self.client = client
        self.target = target

    def call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
             json: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        response = self.client.request(method, path, params=params, json=json)
        if response.status_code not in ok:
            raise PullRequestError(self.refusal(method, path, response))
        try:
            return response.json()
        except ValueError:
            raise PullRequestError(f"{self.target.provider}: {method} {path} answered {response.status_code} "
                                   "with a body that is not JSON") from None

    def refusal(self, method: str, path: str, response: Any) -> str:
        """One line: provider, call, status and the forge's own message (redacted)."""
        from gate.redact import redact

        detail = ""
        try:
            document = response.json()
        except ValueError:
            document = None
        if isinstance(document, dict):
            message = document.get("message") or document.get("error") or ""
            errors = document.get("errors")
            detail = str(message) if not isinstance(message, (dict, list)) else _flat(message)
            if errors:
                detail += f" ({_flat(errors)})"
        line = f"{self.target.provider}: {method} {self.target.api_url}{path} answered {response.status_code}" \
               f" {response.reason_phrase}" + (f": {detail[:300]}" if detail else "")
        return redact(line, [self.target.token])


def _flat(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)[:300]


class _GitHub(_Forge):
    def open_or_update(self, branch: str, base: str, title: str, body: str,
                       labels: tuple[str, ...]) -> PullRequest:
        owner, name = self.target.repository.split("/")
        repo = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        found = self.call("GET", f"{repo}/pulls", params={"head": f"{owner}:{branch}", "base": base,
                                                          "state": "open"})
        if not isinstance(found, list):
            raise PullRequestError(f"github: GET {repo}/pulls did not answer a list")
        if found:
            number = int(found[0]["number"])
            pull = self.call("PATCH", f"{repo}/pulls/{number}", json={"title": title, "body": body})
            action = "updated"
        else:
            pull = self.call("POST", f"{repo}/pulls", json={"title": title, "head": branch, "base": base,
                                                            "body": body, "maintainer_can_modify": False},
                             ok=(201,))
            number, action = int(pull["number"]), "created"
        if labels:  # adds to the labels a person may have set; never removes theirs
            self.call("POST", f"{repo}/issues/{number}/labels", json={"labels": list(labels)})
        return PullRequest("github", number, str(pull.get("html_url", "")), action, labels)


class _GitLab(_Forge):
    def open_or_update(self, branch: str, base: str, title: str, body: str,
                       labels: tuple[str, ...]) -> PullRequest:
        project = f"/projects/{quote(self.target.repository, safe='')}"
        found = self.call("GET", f"{project}/merge_requests",
                          params={"source_branch": branch, "target_branch": base, "state": "opened"})
        if not isinstance(found, list):
            raise PullRequestError(f"gitlab: GET {project}/merge_requests did not answer a list")
        if found:
            iid = int(found[0]["iid"])
            change: dict[str, Any] = {"title": title, "description": body}
            if labels:
                change["add_labels"] = list(labels)
            merge = self.call("PUT", f"{project}/merge_requests/{iid}", json=change)
            action = "updated"
        else:
            create: dict[str, Any] = {"source_branch": branch, "target_branch": base, "title": title,
                                      "description": body}
            if labels:
                create["labels"] = list(labels)
            merge = self.call("POST", f"{project}/merge_requests", json=create, ok=(201,))
            iid, action = int(merge["iid"]), "created"
        return PullRequest("gitlab", iid, str(merge.get("web_url", "")), action, labels)
