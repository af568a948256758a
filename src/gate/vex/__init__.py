"""VEX documents (OpenVEX v0.2.0, CycloneDX VEX) as triage: statements that silence findings like waivers.

``load_documents(paths, artifact)`` reads each file (plain JSON, or a DSSE envelope carrying an
in-toto Statement whose predicate is the document), checks it, and returns its statements
normalized (``input.vex``, schemas/input.schema.json). Which statement silences which finding is
decided in Rego (``gate.lib.waivers``): this package only reads, checks and normalizes.
"""

from __future__ import annotations

from gate.vex.documents import VexDocument, load_document, load_documents
from gate.vex.statements import JUSTIFICATIONS, STATUSES, SUPPRESSING, VexError

__all__ = ["JUSTIFICATIONS", "STATUSES", "SUPPRESSING", "VexDocument", "VexError", "load_document", "load_documents"]
