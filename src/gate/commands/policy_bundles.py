"""``gate policy push`` and ``gate policy pull``: policy bundles to and from OCI registries (gate.policy.oci)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gate.commands.common import ExitCode, Parser, emit
from gate.errors import UsageError

_CREDENTIALS = (
    "Credentials come from the Docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json: "
    "docker login, credHelpers, credsStore); loopback registries (localhost, 127.0.0.1) are spoken to over plain HTTP."
)


def add_parsers(policy_commands: argparse._SubParsersAction[Parser]) -> None:
    """``gate policy push`` and ``gate policy pull`` (in the ``policy`` group)."""
    push = policy_commands.add_parser(
        "push",
        help="push a policy bundle directory to an OCI registry; prints the reference pinned by digest",
        description=(
            "Pack the bundle in DIR (its .rego files, data.json/data.yaml files and .manifest) as OPA reads a "
            "bundle tarball, and push it to REF as OPA's OCI form (one application/vnd.oci.image.layer.v1.tar+gzip "
            "layer), so OPA can load it too. The same files always give the same digest. Prints "
            "oci://REGISTRY/REPO@sha256:DIGEST: give that to --policy to pin exactly this bundle. " + _CREDENTIALS
        ),
    )
    push.add_argument("dir", metavar="DIR", help="the policy bundle directory")
    push.add_argument("ref", metavar="REF", help="where to push it: oci://REGISTRY/REPO:TAG")
    pull = policy_commands.add_parser(
        "pull",
        help="pull a policy bundle from an OCI registry (OPA's or conftest's form) into the cache or a folder",
        description=(
            "Pull the bundle REF names (oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:DIGEST), checking "
            "every digest and refusing links, paths outside the bundle and unknown media types. Bundles are "
            "cached by manifest digest ($GATE_CACHE_DIR/bundles, else $XDG_CACHE_HOME/gate/bundles); a digest "
            "already cached needs no registry, a tag is always resolved against it. Without --output, prints "
            "the pinned reference and the cached folder; with it, copies the bundle's files into DIR. "
            + _CREDENTIALS
        ),
    )
    pull.add_argument("ref", metavar="REF", help="the bundle: oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:D")
    pull.add_argument(
        "--output", "-o", metavar="DIR", help="write the bundle's files into DIR (new or empty) instead of printing the cached folder"
    )


def cmd_policy_push(args: argparse.Namespace) -> ExitCode:
    from gate.policy.oci import push_bundle

    emit(push_bundle(Path(args.dir), args.ref) + "\n", None)
    return ExitCode.OK


def cmd_policy_pull(args: argparse.Namespace) -> ExitCode:
    import shutil

    from gate.policy.oci import fetch_bundle

    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UsageError(f"--output {output}: exists and is not an empty folder; give a new or empty folder")
    fetched = fetch_bundle(args.ref)
    if output is None:
        emit(f"{fetched.reference}\n{fetched.path}\n", None)
        return ExitCode.OK
    try:
        shutil.copytree(fetched.path, output, dirs_exist_ok=True)
    except OSError as e:
        raise UsageError(f"--output {output}: cannot be written ({e.strerror or e})") from None
    emit(f"{fetched.reference}\n{output}\n", None)
    return ExitCode.OK
