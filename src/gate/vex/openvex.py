"""OpenVEX v0.2.0 (https://github.com/openvex/spec/blob/main/OPENVEX-SPEC.md) → normalized statements.

What the specification requires, gate requires: ``@context`` ``https://openvex.dev/ns/v0.2.0``, a
``statements`` list; per statement a ``vulnerability`` with a ``name``, a ``status`` label, products
(its own, else the document's ``products``, else the subjects of the in-toto Statement that carried
the document: the spec's inheritance), a timestamp (its own, else the document's), and for
``not_affected`` a ``justification`` label or an ``impact_statement``. Anything else is an error
naming the statement, never a statement silently left out.
"""

from __future__ import annotations

from typing import Any

from gate import rfc3339
from gate.vex.statements import JUSTIFICATIONS, STATUSES, Malformed, product_of, subcomponent_of, text

#: the context of the version gate reads (the spec: https://openvex.dev/ns/v[version])
CONTEXT = "https://openvex.dev/ns/v0.2.0"
#: contexts of other OpenVEX versions, refused by name (no version means v0.0.1)
OTHER_CONTEXTS = ("https://openvex.dev/ns",)


def is_openvex(document: Any) -> bool:
    """Whether ``document`` claims to be OpenVEX (any version: the version is checked when read)."""
    context = document.get("@context") if isinstance(document, dict) else None
    return isinstance(context, str) and context.startswith("https://openvex.dev/ns")


def statements(document: dict[str, Any], subjects: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """The statements of an OpenVEX document, normalized (without ids: the caller numbers them).

    ``subjects``: the products of the in-toto Statement the document came in, inherited by
    statements (and a document) that name none.
    """
    context = document.get("@context")
    if context != CONTEXT:
        raise Malformed(f"@context is {context!r}: gate reads OpenVEX v0.2.0 ({CONTEXT})")
    raw = document.get("statements")
    if not isinstance(raw, list) or not raw:
        raise Malformed("statements must be a non-empty list")
    author = document.get("author") if isinstance(document.get("author"), str) else None
    doc_time = document.get("timestamp")
    doc_products = _products(document["products"], "products") if "products" in document else None
    result = []
    for index, statement in enumerate(raw):
        where = f"statements[{index}]"
        if not isinstance(statement, dict):
            raise Malformed(f"{where} must be an object")
        result.append(_statement(statement, where, author, doc_time, doc_products or subjects))
    return result


def _statement(
    statement: dict[str, Any], where: str, author: str | None, doc_time: Any, inherited: list[dict[str, Any]] | None
) -> dict[str, Any]:
    vulnerability = statement.get("vulnerability")
    if not isinstance(vulnerability, dict):
        raise Malformed(f"{where}.vulnerability must be an object with a name (OpenVEX v0.2.0)")
    name = text(vulnerability.get("name"), f"{where}.vulnerability.name")
    aliases = vulnerability.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise Malformed(f"{where}.vulnerability.aliases must be a list of strings")
    status = text(statement.get("status"), f"{where}.status")
    if status not in STATUSES:
        raise Malformed(f"{where}.status {status!r} is not a VEX status ({', '.join(STATUSES)})")
    justification = text(statement.get("justification"), f"{where}.justification", required=False)
    if justification is not None and justification not in JUSTIFICATIONS:
        raise Malformed(f"{where}.justification {justification!r} is not a VEX justification ({', '.join(JUSTIFICATIONS)})")
    impact = text(statement.get("impact_statement"), f"{where}.impact_statement", required=False)
    if status == "not_affected" and justification is None and impact is None:
        raise Malformed(f"{where}: not_affected needs a justification or an impact_statement")
    action = text(statement.get("action_statement"), f"{where}.action_statement", required=False)
    moment = statement.get("timestamp", doc_time)
    if moment is None:
        raise Malformed(f"{where} has no timestamp, and neither has the document")
    try:
        timestamp = rfc3339.format(rfc3339.parse(moment))
    except rfc3339.TimeFormatError as e:
        raise Malformed(f"{where}.timestamp {e}") from None
    products = _products(statement["products"], f"{where}.products") if "products" in statement else inherited
    if not products:
        raise Malformed(f"{where} names no product (its own, the document's or the attestation's subjects)")
    normalized: dict[str, Any] = {
        "vulnerability": name,
        "aliases": sorted({a for a in aliases if a != name}),
        "status": status,
        "timestamp": timestamp,
        "products": products,
    }
    for key, value in (
        ("justification", justification), ("impact_statement", impact), ("action_statement", action), ("author", author),
    ):
        if value is not None:
            normalized[key] = value
    if isinstance(statement.get("@id"), str) and statement["@id"].strip():
        normalized["statement"] = statement["@id"]
    return normalized


def _products(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise Malformed(f"{where} must be a non-empty list of products")
    products: list[dict[str, Any]] = []
    for index, product in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(product, dict):
            raise Malformed(f"{at} must be an object (OpenVEX v0.2.0 products have an @id, identifiers or hashes)")
        names = _identifiers(product, at)
        if not names:
            raise Malformed(f"{at} has no @id, identifiers or hashes")
        subcomponents: list[str] = []
        for sub_index, sub in enumerate(product.get("subcomponents") or []):
            sub_at = f"{at}.subcomponents[{sub_index}]"
            if not isinstance(sub, dict):
                raise Malformed(f"{sub_at} must be an object")
            sub_names = _identifiers(sub, sub_at)
            if not sub_names:
                raise Malformed(f"{sub_at} has no @id, identifiers or hashes")
            purls = [p for n in sub_names if (p := subcomponent_of(n, sub_at)) is not None]
            # a subcomponent gate cannot compare with a package: it matches nothing (never everything)
            subcomponents.extend(purls or [f"unmatched:{sub_names[0]}"])
        for identifier in names:
            normalized: dict[str, Any] = product_of(identifier, at)
            if subcomponents:
                normalized = {**normalized, "subcomponents": sorted(set(subcomponents))}
            if normalized not in products:
                products.append(normalized)
    return products


def _identifiers(component: dict[str, Any], where: str) -> list[str]:
    """Every identifier of a component: its @id, identifiers.purl (other identifier kinds — cpe —
    name nothing gate can compare) and its sha-256 hash (an image digest)."""
    names: list[str] = []
    other: list[str] = []
    if "@id" in component:
        names.append(text(component["@id"], f"{where}.@id") or "")
    identifiers = component.get("identifiers")
    if identifiers is not None:
        if not isinstance(identifiers, dict):
            raise Malformed(f"{where}.identifiers must be an object")
        if "purl" in identifiers:
            names.append(text(identifiers["purl"], f"{where}.identifiers.purl") or "")
        other.extend(f"{k}:{v}" for k, v in sorted(identifiers.items()) if k != "purl" and isinstance(v, str))
    hashes = component.get("hashes")
    if hashes is not None:
        if not isinstance(hashes, dict):
            raise Malformed(f"{where}.hashes must be an object")
        sha = hashes.get("sha-256")
        if isinstance(sha, str) and sha.strip():
            names.append(f"sha256:{sha.strip().lower()}")
        other.extend(f"{k}:{v}" for k, v in sorted(hashes.items()) if k != "sha-256" and isinstance(v, str))
    # only identifiers gate cannot compare (cpe, other hashes): one product that matches nothing
    return names or other[:1]
