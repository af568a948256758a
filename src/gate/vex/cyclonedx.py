"""CycloneDX VEX (JSON, spec 1.4–1.6: ``vulnerabilities[].analysis``) → normalized statements.

Each vulnerability with an ``analysis.state`` is a statement; its state maps onto the VEX statuses
as CycloneDX's own VEX guidance does: ``not_affected`` and ``false_positive`` → not_affected,
``resolved`` and ``resolved_with_pedigree`` → fixed, ``exploitable`` → affected, ``in_triage`` →
under_investigation. ``affects[].ref`` names the products: a bom-ref of this document's components
(``metadata.component`` included; their ``purl`` is compared), or a BOM-Link
(``urn:cdx:SERIAL/VERSION#bom-ref``) whose fragment is a package URL. When ``metadata.component``
is an image (``pkg:oci/…``), package products are read as subcomponents of that image: the
statement is about the package in that image only.

Fail closed: a ``not_affected`` analysis needs a ``justification`` or a ``detail``; an ``affects``
entry with ``versions`` counts only for a product pinned to one version (an image digest, a purl
with a version), since gate does not evaluate version ranges; a document with no analysed
vulnerability is not VEX (an error).
"""

from __future__ import annotations

from typing import Any

from gate import rfc3339
from gate.vex.statements import Malformed, image_product, product_of, text

SPEC_VERSIONS = ("1.4", "1.5", "1.6")
STATES = {
    "not_affected": "not_affected",
    "false_positive": "not_affected",
    "resolved": "fixed",
    "resolved_with_pedigree": "fixed",
    "exploitable": "affected",
    "in_triage": "under_investigation",
}
JUSTIFICATIONS = (
    "code_not_present", "code_not_reachable", "requires_configuration", "requires_dependency",
    "requires_environment", "protected_by_compiler", "protected_at_runtime", "protected_at_perimeter",
    "protected_by_mitigating_control",
)


def is_cyclonedx(document: Any) -> bool:
    """Whether ``document`` claims to be a CycloneDX BOM."""
    return isinstance(document, dict) and document.get("bomFormat") == "CycloneDX"


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The analysed vulnerabilities of a CycloneDX document, normalized (without ids)."""
    version = document.get("specVersion")
    if version not in SPEC_VERSIONS:
        raise Malformed(f"specVersion {version!r}: gate reads CycloneDX VEX {', '.join(SPEC_VERSIONS)}")
    raw = document.get("vulnerabilities")
    if not isinstance(raw, list):
        raise Malformed("vulnerabilities must be a list (a CycloneDX VEX lists analysed vulnerabilities)")
    raw_metadata = document.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    refs = _components(document, metadata)
    subject = metadata.get("component") if isinstance(metadata.get("component"), dict) else None
    subject_image = image_product(subject["purl"]) if subject and isinstance(subject.get("purl"), str) else None
    author = _author(metadata)
    doc_time = metadata.get("timestamp")
    result = []
    for index, vulnerability in enumerate(raw):
        where = f"vulnerabilities[{index}]"
        if not isinstance(vulnerability, dict):
            raise Malformed(f"{where} must be an object")
        analysis = vulnerability.get("analysis")
        if analysis is None:
            continue  # a vulnerability without an analysis is a finding (VDR), not a VEX statement
        if not isinstance(analysis, dict):
            raise Malformed(f"{where}.analysis must be an object")
        result.append(_statement(vulnerability, analysis, where, refs, subject_image, author, doc_time))
    if not result:
        raise Malformed("no vulnerability has an analysis.state: not a VEX document")
    return result


def _statement(
    vulnerability: dict[str, Any], analysis: dict[str, Any], where: str, refs: dict[str, dict[str, Any]],
    subject_image: dict[str, str] | None, author: str | None, doc_time: Any,
) -> dict[str, Any]:
    name = text(vulnerability.get("id"), f"{where}.id")
    state = text(analysis.get("state"), f"{where}.analysis.state")
    if state not in STATES:
        raise Malformed(f"{where}.analysis.state {state!r} is not a CycloneDX impact analysis state ({', '.join(STATES)})")
    status = STATES[state]
    justification = text(analysis.get("justification"), f"{where}.analysis.justification", required=False)
    if justification is not None and justification not in JUSTIFICATIONS:
        raise Malformed(f"{where}.analysis.justification {justification!r} is not a CycloneDX justification ({', '.join(JUSTIFICATIONS)})")
    detail = text(analysis.get("detail"), f"{where}.analysis.detail", required=False)
    if state == "not_affected" and justification is None and detail is None:
        raise Malformed(f"{where}: not_affected needs an analysis.justification or an analysis.detail")
    moment = analysis.get("lastUpdated") or analysis.get("firstIssued") or vulnerability.get("updated") or doc_time
    if moment is None:
        raise Malformed(f"{where} has no time (analysis.lastUpdated, firstIssued, updated or metadata.timestamp)")
    try:
        timestamp = rfc3339.format(rfc3339.parse(moment))
    except rfc3339.TimeFormatError as e:
        raise Malformed(f"{where}: time {e}") from None
    affects = vulnerability.get("affects")
    if not isinstance(affects, list) or not affects:
        raise Malformed(f"{where} names no product (affects is missing or empty)")
    products: list[dict[str, Any]] = []
    for index, entry in enumerate(affects):
        at = f"{where}.affects[{index}]"
        if not isinstance(entry, dict):
            raise Malformed(f"{at} must be an object with a ref")
        ref = text(entry.get("ref"), f"{at}.ref") or ""
        product = _product(ref, refs, subject_image, at)
        if "versions" in entry and not _pinned(product):
            product = {"unmatched": ref}  # version ranges are not evaluated: only a pinned product counts
        if product not in products:
            products.append(product)
    aliases = sorted({
        str(r["id"]) for r in vulnerability.get("references") or () if isinstance(r, dict) and isinstance(r.get("id"), str)
    } - {name})
    normalized: dict[str, Any] = {
        "vulnerability": name, "aliases": aliases, "status": status, "timestamp": timestamp, "products": products,
    }
    response = analysis.get("response")
    action = ", ".join(r for r in response if isinstance(r, str)) if isinstance(response, list) else None
    for key, value in (
        ("justification", justification),
        ("impact_statement", detail if status == "not_affected" else None),
        ("action_statement", (detail if status != "not_affected" else None) or action or None),
        ("author", author),
    ):
        if value is not None:
            normalized[key] = value
    if isinstance(vulnerability.get("bom-ref"), str) and vulnerability["bom-ref"].strip():
        normalized["statement"] = vulnerability["bom-ref"]
    return normalized


def _product(ref: str, refs: dict[str, dict[str, Any]], subject_image: dict[str, str] | None, where: str) -> dict[str, Any]:
    component = refs.get(ref)
    if component is not None:
        purl = component.get("purl")
        identifier = purl if isinstance(purl, str) and purl.strip() else None
    elif ref.startswith("urn:cdx:") and "#" in ref:
        identifier = ref.split("#", 1)[1]  # a BOM-Link into another BOM: its bom-ref, often a purl
    else:
        identifier = ref if ref.startswith("pkg:") else None
    if identifier is None:
        return {"unmatched": ref}
    product = product_of(identifier, where) if identifier.startswith("pkg:") else {"unmatched": ref}
    if "purl" in product and subject_image is not None:
        return {**subject_image, "subcomponents": [product["purl"]]}
    return product


def _pinned(product: dict[str, Any]) -> bool:
    if "image_digest" in product:
        return True
    purl = product.get("purl")
    return isinstance(purl, str) and "@" in purl.split("?", 1)[0].rsplit("/", 1)[-1]


def _components(document: dict[str, Any], metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every component with a bom-ref, nested ones and metadata.component included."""
    found: dict[str, dict[str, Any]] = {}
    stack = [metadata.get("component")] + list(document.get("components") or [])
    while stack:
        component = stack.pop()
        if not isinstance(component, dict):
            continue
        if isinstance(component.get("bom-ref"), str):
            found.setdefault(component["bom-ref"], component)
        stack.extend(component.get("components") or [])
    return found


def _author(metadata: dict[str, Any]) -> str | None:
    """Who made the document: the first author's name or email, else the supplier or manufacturer's name."""
    for author in metadata.get("authors") or ():
        if isinstance(author, dict):
            for key in ("email", "name"):
                if isinstance(author.get(key), str) and author[key].strip():
                    return str(author[key])
    for key in ("supplier", "manufacturer", "manufacture"):
        entity = metadata.get(key)
        if isinstance(entity, dict) and isinstance(entity.get("name"), str) and entity["name"].strip():
            return str(entity["name"])
    return None
