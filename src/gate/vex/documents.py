"""Reading VEX files: size limit, JSON limits, the format, the signed (DSSE) form, statement ids.

A file is one of:

- an OpenVEX v0.2.0 document or a CycloneDX VEX (JSON);
- a DSSE envelope (gate.dsse) whose payload is an in-toto Statement (v1, or v0.1 as vexctl writes it)
  carrying such a document as its predicate (predicateType ``https://openvex.dev/ns/v0.2.0``,
  ``https://openvex.dev/ns``, ``https://cyclonedx.org/vex`` or ``https://cyclonedx.org/bom``). Its
  signature must be by a key gate trusts (GATE_TRUSTED_KEYS) and its subjects must include the image
  being evaluated; OpenVEX statements without products inherit the subjects.

With ``vex_require_signed`` (gate.toml, GATE_VEX_REQUIRE_SIGNED) a plain document is refused. Every
problem is a VexError naming the file: the evaluation exits 2, nothing is silently left out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate import dsse, jsonbody
from gate.vex import cyclonedx, openvex
from gate.vex.statements import Malformed, VexError, relative_to

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: a VEX document is a few kilobytes to a few megabytes; anything larger is refused unread
MAX_VEX_BYTES = 16 * 1024 * 1024
#: in-toto Statement types accepted around a signed document
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
PREDICATE_TYPES = {
    "https://openvex.dev/ns/v0.2.0": "openvex",
    "https://openvex.dev/ns": "openvex",
    "https://cyclonedx.org/vex": "cyclonedx",
    "https://cyclonedx.org/bom": "cyclonedx",
}
#: how many hex digits of the document digest start a statement id
ID_HEX = 12


@dataclass(frozen=True)
class VexDocument:
    """One VEX file, read and checked."""

    path: str
    #: ``sha256:<hex>`` of the file's bytes (the envelope's, for a signed document)
    digest: str
    format: str
    statements: list[dict[str, Any]] = field(default_factory=list)
    #: the id of the trusted key that signed it; None for a plain document
    signed_by: str | None = None


def load_documents(
    paths: Sequence[str],
    *,
    artifact: Mapping[str, Any] | None,
    require_signed: bool = False,
    trusted: Callable[[], Mapping[str, Ed25519PublicKey]] | None = None,
) -> list[VexDocument]:
    """Every file of ``paths`` read (a file given twice is read once), in the order given.

    ``artifact``: the input's artifact (``image``, ``digest``): a signed document must name its digest,
    and image products are spelled as it spells its repository. ``trusted``: returns the trusted keys,
    called only when a signed document is met.
    """
    documents: list[VexDocument] = []
    keys: list[Mapping[str, Ed25519PublicKey]] = []

    def trusted_keys() -> Mapping[str, Ed25519PublicKey]:
        if not keys:
            if trusted is None:
                from gate.decisions.signing import load_trusted_keys

                keys.append(load_trusted_keys())
            else:
                keys.append(trusted())
        return keys[0]

    seen: set[str] = set()
    for path in paths:
        document = load_document(path, artifact=artifact, require_signed=require_signed, trusted=trusted_keys)
        if document.digest not in seen:
            seen.add(document.digest)
            documents.append(document)
    return documents


def statements_input(documents: Sequence[VexDocument]) -> list[dict[str, Any]]:
    """``input.vex``: every statement of every document, in the order read."""
    return [statement for document in documents for statement in document.statements]


def load_document(
    path: str | Path,
    *,
    artifact: Mapping[str, Any] | None,
    require_signed: bool = False,
    trusted: Callable[[], Mapping[str, Ed25519PublicKey]],
) -> VexDocument:
    """One VEX file, checked and normalized (see the module's description)."""
    raw = _read(Path(path))
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        document = jsonbody.loads(raw)
    except jsonbody.JSONProblem as e:
        raise VexError(path, f"is {e}") from None
    signed_by = None
    subjects: list[dict[str, str]] | None = None
    predicate_format: str | None = None
    if _is_envelope(document):
        document, signed_by, subjects, predicate_format = _open_signed(path, document, artifact, trusted)
    elif require_signed:
        raise VexError(path, "is not signed, and vex_require_signed is set (GATE_VEX_REQUIRE_SIGNED): give a DSSE envelope signed by a trusted key")
    try:
        if openvex.is_openvex(document) and predicate_format in (None, "openvex"):
            fmt, found = "openvex", openvex.statements(document, subjects)
        elif cyclonedx.is_cyclonedx(document) and predicate_format in (None, "cyclonedx"):
            fmt, found = "cyclonedx", cyclonedx.statements(document)
        else:
            raise Malformed(
                "is not a VEX document gate reads: OpenVEX v0.2.0 (@context https://openvex.dev/ns/v0.2.0) "
                "or CycloneDX VEX (bomFormat CycloneDX with analysed vulnerabilities)"
            )
    except Malformed as e:
        raise VexError(path, str(e)) from None
    image = artifact.get("image") if artifact else None
    named = [s.get("statement") for s in found]
    statements = []
    for index, statement in enumerate(found):
        name = statement.pop("statement", None)
        label = name if isinstance(name, str) and named.count(name) == 1 else f"#{index}"
        statements.append({
            "id": f"{digest.removeprefix('sha256:')[:ID_HEX]}/{label}",
            "document": digest,
            "statement": label,
            "format": fmt,
            **statement,
            "products": [relative_to(p, image if isinstance(image, str) else None) for p in statement["products"]],
        })
    return VexDocument(str(path), digest, fmt, statements, signed_by)


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_VEX_BYTES + 1)
    except FileNotFoundError:
        raise VexError(path, "no such file") from None
    except IsADirectoryError:
        raise VexError(path, "is a folder, not a file") from None
    except OSError as e:
        raise VexError(path, f"cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_VEX_BYTES:
        raise VexError(path, f"larger than {MAX_VEX_BYTES // (1024 * 1024)} MiB; a VEX document is far smaller")
    if not raw.strip():
        raise VexError(path, "is empty")
    return raw


def _is_envelope(document: Any) -> bool:
    return isinstance(document, dict) and "payloadType" in document and "signatures" in document


def _open_signed(
    path: str | Path, envelope: dict[str, Any], artifact: Mapping[str, Any] | None,
    trusted: Callable[[], Mapping[str, Ed25519PublicKey]],
) -> tuple[Any, str, list[dict[str, str]], str]:
    """The predicate of a signed in-toto Statement, who signed it, its subjects as products, its format."""
    try:
        payload, key = dsse.verify(envelope, trusted())
    except dsse.EnvelopeError as e:
        raise VexError(path, e.diagnostics()) from None
    try:
        statement = jsonbody.loads(payload)
    except jsonbody.JSONProblem as e:
        raise VexError(path, f"signed payload is {e}") from None
    if not isinstance(statement, dict) or statement.get("_type") not in STATEMENT_TYPES:
        raise VexError(path, f"signed payload is not an in-toto Statement ({', '.join(STATEMENT_TYPES)})")
    predicate_type = statement.get("predicateType")
    if predicate_type not in PREDICATE_TYPES:
        raise VexError(path, f"signed predicateType {predicate_type!r} is not VEX ({', '.join(PREDICATE_TYPES)})")
    digests = []
    for subject in statement.get("subject") or ():
        hexdigest = subject.get("digest", {}).get("sha256") if isinstance(subject, dict) and isinstance(subject.get("digest"), dict) else None
        if isinstance(hexdigest, str):
            digests.append(f"sha256:{hexdigest.lower()}")
    if not digests:
        raise VexError(path, "signed statement has no subject with a sha256 digest")
    wanted = artifact.get("digest") if artifact else None
    if wanted not in digests:
        raise VexError(path, f"signed for other images ({', '.join(digests[:3])}{', …' if len(digests) > 3 else ''}), not {wanted}")
    return statement.get("predicate"), key, [{"image_digest": d} for d in digests], PREDICATE_TYPES[predicate_type]
