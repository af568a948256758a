"""``gate promote``: copy an approved digest to the release registry and commit it to the GitOps repo."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from gate.commands.common import ExitCode, add_policy_argument, data_files, emit, policy_specs
from gate.commands.notifications import add_notify_argument, notify_promotion, notify_targets


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate promote``."""
    promote = commands.add_parser(
        "promote",
        help="copy an approved digest to the release registry and commit it to the GitOps repo (0 done, 1 refused, 2 error)",
        description=(
            "Check the decision (exists, allow, the newest for its digest and environment, hash and signature by a "
            "trusted key, this digest and environment, younger than --max-age, no waiver expired since, its environment "
            "declared in the policy data), the GitOps "
            "repository's gate-environments.yaml (it must bind --gitops-path to the decision's environment) and "
            "the GitOps history (a human rollback holds the digest), then copy the image by digest to --target "
            "(or push it from a Docker daemon), attach the decision's DSSE-signed SLSA VSA to the promoted digest "
            "(gate attestation verify checks it), and commit the pinned reference to the GitOps file with Gate-Decision, "
            "Gate-Image-Digest, Gate-Log-Head and Gate-Attestation trailers. Every outcome is recorded in the decision log as an event. "
            "Exit 0 done or already done, 1 refused (nothing changed), 2 error."
        ),
        epilog=(
            "example:\n"
            "  gate promote --decision 0193... --target registry.example.com/release/cart:1.4.3 \\\n"
            "               --gitops-repo https://git.example.com/ops/deploy.git --gitops-path apps/cart/kustomization.yaml\n"
            "registry credentials: ~/.docker/config.json (auths, credHelpers, credsStore) or $DOCKER_CONFIG;\n"
            "environment: GATE_PROMOTE_MAX_AGE (default 7d), GATE_TRUSTED_KEYS, GATE_DECISION_STORE;\n"
            "gate.toml (docs/configuration.md) may give --gitops-repo, --gitops-branch, --max-age and, per --env,\n"
            "--gitops-path defaults: gate-environments.yaml in the GitOps repository still checks the path"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    promote.add_argument("--decision", required=True, metavar="ID", help="the allow decision to promote")
    promote.add_argument("--target", required=True, metavar="REF:TAG", help="release repository and tag, e.g. reg/app:1.2")
    promote.add_argument("--env", metavar="ENV", help="the environment promoted to; must be the decision's (default: the decision's)")
    add_policy_argument(
        promote, purpose=" whose data declares the environments (the decision's must be declared)",
        data_help="data files declaring more environments (environments: ...), as for gate evaluate; repeatable",
    )
    promote.add_argument("--source", metavar="REF@sha256:D", help="staging image (default: the decision's image and digest)")
    promote.add_argument("--from-daemon", action="store_true", help="push the image from a Docker-API daemon (DOCKER_HOST) instead of copying")
    promote.add_argument("--docker-host", metavar="URL", help="daemon address for --from-daemon (default: DOCKER_HOST)")
    promote.add_argument(
        "--gitops-repo", metavar="URL", help="the GitOps repository (any URL git clones; default: promote.gitops_repo in gate.toml)",
    )
    promote.add_argument(
        "--gitops-path", metavar="PATH",
        help="the file in it that pins the image (default: gitops_path of [environments.ENV] in gate.toml for --env ENV)",
    )
    promote.add_argument(
        "--gitops-branch", metavar="BRANCH", help="branch to commit on (default: promote.gitops_branch in gate.toml, else main)",
    )
    promote.add_argument(
        "--pr-branch", action="store_true",
        help="push to a branch gate/promote-<hash of target and change> for a pull request, instead of to --gitops-branch",
    )
    promote.add_argument(
        "--pr", action="store_true",
        help="push the promotion branch as --pr-branch does, then open (or update) its GitHub pull request or GitLab "
             "merge request into --gitops-branch, the decision's markdown summary as its body "
             "(token: GITHUB_TOKEN/GH_TOKEN or GITLAB_TOKEN/CI_JOB_TOKEN)",
    )
    promote.add_argument("--pr-provider", choices=["github", "gitlab"], help="the forge (default: from the GitOps URL's host)")
    promote.add_argument(
        "--pr-api-url", metavar="URL",
        help="the forge's API base (default: api.github.com, https://HOST/api/v3 for GitHub Enterprise, https://HOST/api/v4 for GitLab)",
    )
    promote.add_argument("--pr-repo", metavar="OWNER/NAME", help="the repository (GitLab: project path) (default: from the GitOps URL)")
    promote.add_argument(
        "--pr-label", action="append", metavar="LABEL",
        help="label of the pull request, repeatable (default: gate and env:ENVIRONMENT)",
    )
    promote.add_argument(
        "--file-format", choices=["auto", "kustomize", "helm", "manifest", "setters"], default="auto",
        help="how the GitOps file names the image (default: detect)",
    )
    promote.add_argument("--values-key", default="image", metavar="KEY", help="Helm values: dotted path of the image mapping (default image)")
    promote.add_argument("--setter", metavar="NS:NAME", help='Flux setter marker to update ({"$imagepolicy": "NS:NAME"})')
    promote.add_argument("--message-template", metavar="FILE", help="commit message template (fields {image} {old} {new} {environment} {decision_id} ...)")
    promote.add_argument("--author", default="gate <gate@localhost>", metavar="'NAME <EMAIL>'", help="commit author and committer")
    promote.add_argument("--sign", action=argparse.BooleanOptionalAction, default=None, help="sign the commit (default: as git's commit.gpgsign says)")
    promote.add_argument("--max-age", metavar="DURATION", help="refuse decisions older than this (default GATE_PROMOTE_MAX_AGE or 7d)")
    promote.add_argument("--override-hold", action="store_true", help="re-promote a digest a person rolled back (recorded in the commit)")
    promote.add_argument(
        "--no-attest", dest="attest", action="store_false",
        help="do not attach the decision's signed SLSA VSA to the promoted digest (by default gate attaches it, as an "
             "OCI referrer or under cosign's sha256-<hex>.att tag, and names it in the Gate-Attestation trailer); "
             "for release registries that refuse it, e.g. with immutable tags",
    )
    promote.add_argument("--dry-run", action="store_true", help="print the registry operations and the file diff; change and record nothing")
    promote.add_argument("--format", choices=["text", "json"], default="text")
    add_notify_argument(promote, what="when the promotion is done or refused (promotion.done, promotion.refused)")


def cmd_promote(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import load_signer, load_trust
    from gate.decisions.store import open_store
    from gate.decisions.timefilter import parse_duration
    from gate.environments import declared_environments
    from gate.errors import UsageError
    from gate.evaluation import load_policy_data
    from gate.promote.preconditions import DEFAULT_MAX_AGE
    from gate.promote.promotion import GitOpsTarget, PromotionRequest, promote

    targets = notify_targets(args)  # a bad --notify or [notify] is exit 2 before anything happens
    gitops_repo, gitops_path, gitops_branch = _gitops_flags(args)
    environments = declared_environments(load_policy_data(policy_specs(args), data_files(args))[1])
    if args.env is not None:
        environments.require(args.env)  # a typo is exit 2 before anything is read or recorded
    author = re.fullmatch(r"\s*(.+?)\s*<([^<>]+)>\s*", args.author)
    if author is None:
        raise UsageError(f"--author {args.author!r}: give 'NAME <EMAIL>'")
    template = None
    if args.message_template:
        try:
            template = Path(args.message_template).read_text()
        except OSError as e:
            raise UsageError(f"--message-template {args.message_template}: {e.strerror}") from None
    gitops = None
    if gitops_repo and gitops_path:
        gitops = GitOpsTarget(
            repo=gitops_repo, path=gitops_path, branch=gitops_branch,
            mode="branch" if args.pr_branch or args.pr else "push", format=args.file_format, values_key=args.values_key,
            setter=args.setter, message_template=template,
            author_name=author.group(1), author_email=author.group(2), sign=args.sign,
        )
    pull = _pull_target(args, gitops_repo)  # a missing token or forge is exit 2 before anything is pushed
    from gate import settings

    max_age = args.max_age or settings.current().env("GATE_PROMOTE_MAX_AGE") or DEFAULT_MAX_AGE
    request = PromotionRequest(
        decision_id=args.decision, target=args.target, gitops=gitops,
        max_age=parse_duration(max_age, "--max-age"), environment=args.env, source=args.source,
        from_daemon=args.from_daemon, docker_host=args.docker_host,
        override_hold=args.override_hold, dry_run=args.dry_run, environments=environments, attest=args.attest,
    )
    trust = load_trust()
    signer = None if args.dry_run else load_signer()
    store = open_store(create=False)
    try:
        result = promote(request, store, signer, trust.keys).as_dict()
        decision = store.get(args.decision) if pull is not None else None
    finally:
        store.close()
    failure = None
    if pull is not None:
        from gate.promote.pulls import PullRequestError

        try:
            result["pull_request"] = _pull_request(args, pull, result, decision, gitops_branch)
        except PullRequestError as e:
            result["pull_request"] = None
            branch = result["gitops"].get("branch")
            failure = PullRequestError(f"{e}; the branch {branch} stays pushed: re-run gate promote --pr to retry")
    if args.format == "json":
        from gate.output import json as json_output

        emit(json_output.render(result), None)
    else:
        from gate.output import promotion_text

        text = promotion_text.render(result)
        opened = result.get("pull_request")
        if opened:
            noun = "Pull request" if opened["provider"] == "github" else "Merge request"
            text += f"\n{noun}: {opened['action']} #{opened['number']} {opened['url']}\n"
        emit(text, None)
    notify_promotion(result, targets)  # after the outcome is recorded and printed; never changes the exit code
    if failure is not None:
        raise failure  # exit 2: the promotion is done and recorded, its pull request is not
    return ExitCode.DENIED if result["outcome"] == "refused" else ExitCode.OK


def _pull_target(args: argparse.Namespace, gitops_repo: str | None) -> Any:
    """``--pr``'s forge, API base, repository and token, checked before the promotion starts."""
    from gate.errors import UsageError

    if not args.pr:
        if args.pr_provider or args.pr_api_url or args.pr_repo or args.pr_label:
            raise UsageError("--pr-provider, --pr-api-url, --pr-repo and --pr-label go with --pr")
        return None
    if not gitops_repo:
        raise UsageError("--pr needs the GitOps repository (--gitops-repo and --gitops-path)")
    from gate.promote.pulls import pull_target

    return pull_target(gitops_repo, provider=args.pr_provider, api_url=args.pr_api_url, repository=args.pr_repo)


def _pull_request(args: argparse.Namespace, pull: Any, result: dict[str, Any], decision: Any,
                  base: str) -> dict[str, Any] | None:
    """Open or update the request for the promotion branch; None when there is nothing to propose
    (refused, a dry run, or the base branch already pins the image)."""
    from gate.promote.pulls import open_or_update

    gitops = result.get("gitops") or {}
    branch = gitops.get("branch")
    if result["outcome"] not in ("done", "noop") or decision is None or not branch or branch == base \
            or gitops.get("status") not in ("committed", "noop"):
        return None
    environment = result.get("environment") or decision.environment
    labels = args.pr_label if args.pr_label else ["gate", f"env:{environment}"]
    title = f"gate: promote {result['target']} to {environment}"
    opened = open_or_update(pull, branch=branch, base=base, title=title, body=_pull_body(result, decision),
                            labels=labels)
    return opened.as_dict()


def _pull_body(result: dict[str, Any], decision: Any) -> str:
    """The decision's markdown summary, then the promotion's facts."""
    from gate.output import markdown

    gitops = result["gitops"]
    commit = gitops.get("commit") or "(none new: the branch already carries the change)"
    facts = [
        ("target", result["target"]), ("digest", result.get("digest")), ("environment", result.get("environment")),
        ("GitOps file", f"{gitops.get('path')} ({gitops.get('repo')})"), ("branch", gitops.get("branch")),
        ("commit", commit), ("decision", result["decision_id"]), ("decision log event", result.get("event_id")),
        ("attestation (VSA)", (result.get("attestation") or {}).get("reference")),
    ]
    rows = "\n".join(f"| {name} | {markdown.inline_code(str(value))} |" for name, value in facts if value)
    facts_table = f"\n\n### Promotion\n\n| | |\n|---|---|\n{rows}\n"
    # a pull request body holds at most 65,536 characters: the summary gives way to the facts
    summary = markdown.render(decision, max_chars=markdown.MAX_CHARS - len(facts_table) - 1).rstrip()
    return summary + facts_table


def _gitops_flags(args: argparse.Namespace) -> tuple[str | None, str | None, str]:
    """--gitops-repo, --gitops-path and --gitops-branch, each from its flag, else gate.toml, else its default.

    gate.toml gives defaults only: the path it names for ``--env`` is checked against the GitOps
    repository's gate-environments.yaml exactly as a flag would be (the binding lives there, not here).
    """
    from gate import settings
    from gate.errors import UsageError

    configured = settings.current()
    repo = args.gitops_repo or configured.string("promote.gitops_repo")
    path = args.gitops_path or (configured.gitops_path(args.env) if args.env else None)
    branch = args.gitops_branch or configured.string("promote.gitops_branch") or "main"
    if repo and not path:
        if args.gitops_repo:
            raise UsageError("--gitops-repo and --gitops-path go together")
        where = f"{configured.path} sets promote.gitops_repo"
        if args.env is None:
            raise UsageError(f"{where}: give --env (to use its [environments.ENV] gitops_path) or --gitops-path")
        raise UsageError(f"{where} but no gitops_path for environment {args.env}: add [environments.{args.env}] or give --gitops-path")
    if path and not repo:
        raise UsageError("--gitops-repo and --gitops-path go together (or set promote.gitops_repo in gate.toml)")
    return repo, path, branch
