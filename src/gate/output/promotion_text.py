"""``gate promote`` as text: the outcome line, the registry operations, the GitOps commit or diff."""

from __future__ import annotations

from typing import Any

_HEADLINE = {
    "done": "PROMOTED",
    "noop": "ALREADY PROMOTED",
    "refused": "REFUSED",
    "dry-run": "DRY RUN",
    "error": "ERROR",
}


def render(result: dict[str, Any]) -> str:
    """A promotion result (``PromotionResult.as_dict()``) for a person."""
    digest = result.get("digest") or "(unknown digest)"
    env = result.get("environment") or "?"
    out = [f"{_HEADLINE.get(result['outcome'], result['outcome'].upper())} {result['target']} = {digest}"
           f" (decision {result['decision_id']}, {env})"]
    if result["reasons"]:
        out.append("")
        out.append("Refused because:" if result["outcome"] == "refused" else "Reasons:")
        out += [f"  - {reason}" for reason in result["reasons"]]
    registry = result.get("registry") or {}
    if registry:
        out.append("")
        if registry.get("already_present"):
            out.append(f"Registry: {result['target']} already points to {digest}; nothing copied")
        else:
            out.append("Registry (would do):" if result["outcome"] == "dry-run" else "Registry:")
            out += [f"  {op}" for op in registry.get("operations", [])]
    attestation = result.get("attestation") or {}
    if attestation:
        out.append("")
        if attestation.get("dry_run"):
            out.append("Attestation (would do):")
            out += [f"  {op}" for op in attestation.get("operations", [])]
        elif attestation.get("already_present"):
            out.append(f"Attestation: the VSA is already attached ({attestation.get('reference')})")
        else:
            how = "OCI referrer" if attestation.get("mode") == "referrer" else "cosign .att tag"
            out.append(f"Attestation: VSA signed by {attestation.get('key_id')} attached as {attestation.get('reference')} ({how})")
    gitops = result.get("gitops") or {}
    if gitops:
        out.append("")
        where = f"{gitops['repo']} {gitops['path']}"
        status = gitops.get("status")
        if status == "committed":
            out.append(f"GitOps: committed {str(gitops['commit'])[:12]} to {gitops['branch']} of {where}"
                       f" (after {gitops['attempts']} push attempt(s))")
            out.append(f"  {gitops.get('old') or '(none)'} -> {gitops['new']}")
            if gitops["branch"].startswith("gate/promote-"):
                out.append(f"  open a pull request from {gitops['branch']}")
        elif status == "noop":
            out.append(f"GitOps: {where} already pins {gitops['new']}; nothing committed")
        elif status == "dry-run":
            out.append(f"GitOps (would commit to {gitops['branch']} of {where}):")
            out.append(gitops.get("diff", "").rstrip("\n"))
    if result.get("event_id"):
        out.append("")
        out.append(f"Recorded as event {result['event_id']} in the decision log.")
    return "\n".join(out) + "\n"
