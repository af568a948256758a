"""Normalized VEX statements: what every format is read into, and how products are named.

A normalized statement (one entry of ``input.vex``) is a plain JSON mapping::

    {"id": "<document digest, 12 hex>/<statement>", "document": "sha256:<hex of the file bytes>",
     "statement": "<@id, bom-ref or #index>", "format": "openvex" | "cyclonedx",
     "vulnerability": "CVE-…", "aliases": [...], "status": "not_affected" | "fixed" | "affected" |
     "under_investigation", "justification"?, "impact_statement"?, "action_statement"?, "author"?,
     "timestamp": "<RFC 3339, UTC, microseconds>",
     "products": [{"image_digest"? | "image"? (+ "tag"?) | "purl"? | "unmatched"?, "subcomponents"?: [purl, ...]}]}

Each product is one way of naming what the statement is about; a product with several identifiers
(an ``@id`` purl and a sha-256 hash) becomes several products. Image references go through
gate.imageref (the one grammar). A product gate cannot match (a bom-ref to a component without a
purl, an IRI that is no image or package URL) is kept as ``{"unmatched": "..."}``: the statement
stays valid and silences nothing for it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from gate import imageref
from gate.errors import GateError, UsageError
from gate.policy.waivers import purl_problem

#: the VEX statuses (OpenVEX's labels; CycloneDX analysis states are mapped onto them)
STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
#: the statuses that silence a finding, as a waiver does
SUPPRESSING = frozenset({"not_affected", "fixed"})
#: OpenVEX v0.2.0 justification labels (the VEX working group's "Status Justifications")
JUSTIFICATIONS = (
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class VexError(GateError):
    """A VEX document cannot be used: unreadable, malformed, of an unknown format, or not signed as required."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"VEX {path}: {problem}")
        self.path = str(path)
        self.problem = problem


class Malformed(ValueError):
    """A problem inside a document (the caller adds the file's name)."""


def text(value: Any, where: str, *, required: bool = True) -> str | None:
    """A non-empty string at ``where``; None when absent and not ``required``."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        if value is None:
            raise Malformed(f"{where} is missing")
        raise Malformed(f"{where} must be a non-empty string")
    return value


def image_product(reference: str) -> dict[str, str] | None:
    """The image a product identifier names, or None when it names no image.

    ``pkg:oci/NAME@sha256%3A…?repository_url=REG/REPO&tag=T``, ``REG/REPO@sha256:…``, a bare
    ``sha256:…``, ``REG/REPO:TAG`` or ``REG/REPO``. A name without a registry host (``nginx``) is
    not read as an image: a bom-ref or a product name would otherwise silence Docker Hub images.
    """
    if reference.startswith("pkg:oci/"):
        return _oci_purl(reference)
    if reference.startswith("sha256:"):
        return {"image_digest": reference} if imageref.DIGEST.fullmatch(reference) else None
    registry, _ = imageref.split_registry(imageref.split(reference)[0])
    if registry is None or "://" in reference:
        return None
    try:
        parsed = imageref.parse(reference, "VEX product")
    except UsageError:
        return None
    if parsed.digest is not None:
        return {"image_digest": parsed.digest}
    if parsed.tag is not None:
        return {"image": parsed.name, "tag": parsed.tag}
    return {"image": parsed.name}


def _oci_purl(purl: str) -> dict[str, str] | None:
    """``pkg:oci/NAME[@sha256%3AHEX][?repository_url=…&tag=…]`` (the purl spec's OCI type)."""
    body, _, _ = purl.partition("#")
    path, _, query = body.partition("?")
    name, _, version = path.removeprefix("pkg:oci/").partition("@")
    version = unquote(version)
    if version:
        digest = version if version.startswith("sha256:") else None
        if digest is None or not _HEX64.fullmatch(digest.removeprefix("sha256:")):
            return None
        return {"image_digest": digest}
    qualifiers = dict(parse_qsl(query, keep_blank_values=True))
    repository = qualifiers.get("repository_url", "").strip().rstrip("/")
    name = unquote(name).lower()
    if not name:
        return None
    if repository:
        repository = repository.split("://", 1)[-1]
        # the spec writes repository_url with the name (docker.io/library/debian); vexctl writes the registry only
        if repository.rsplit("/", 1)[-1] != name:
            repository = f"{repository}/{name}"
    else:
        repository = name
    try:
        parsed = imageref.parse(repository, "VEX product")
    except UsageError:
        return None
    product = {"image": parsed.name}
    if qualifiers.get("tag"):
        product["tag"] = qualifiers["tag"]
    return product


def product_of(identifier: str, where: str) -> dict[str, str]:
    """One product identifier as a normalized product: an image, a package URL, or unmatched."""
    image = image_product(identifier)
    if image is not None:
        return image
    if identifier.startswith("pkg:"):
        if (problem := purl_problem(identifier)) is not None:
            raise Malformed(f"{where}: {identifier!r} {problem}")
        return {"purl": identifier}
    return {"unmatched": identifier}


def subcomponent_of(identifier: str, where: str) -> str | None:
    """A subcomponent as a package URL (what a finding's package is compared with); None for other names."""
    if identifier.startswith("pkg:") and not identifier.startswith("pkg:oci/"):
        if (problem := purl_problem(identifier)) is not None:
            raise Malformed(f"{where}: {identifier!r} {problem}")
        return identifier
    return None


def relative_to(product: dict[str, Any], artifact_image: str | None) -> dict[str, Any]:
    """``product`` with an image spelled as the artifact spells its repository when both are the same
    repository (``nginx`` and ``docker.io/library/nginx``): Rego compares the strings as they are."""
    image = product.get("image")
    if isinstance(image, str) and artifact_image and imageref.same_repository(image, artifact_image):
        return {**product, "image": artifact_image}
    return product
