"""Safe, single-pass parsing helpers shared by scanner plugins.

JSON is decoded with msgspec straight into typed structs: only the fields a scanner declares are
materialized, the file is memory-mapped rather than copied, and a wrong type is reported with its
JSON path. XML goes through defusedxml's streaming parser: entity declarations and external
references are refused, so an entity-expansion or XXE report fails at once instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from gate.scanning.report import Report

T = TypeVar("T")
_BOM = b"\xef\xbb\xbf"
#: No report of any scanner nests deeper; a deeper one is hostile (detection and decoding refuse it).
MAX_JSON_NESTING = 512


def decode_json(report: Report, type: type[T]) -> T:
    """Decode the whole report as JSON into ``type``; any problem is a ``ReportError``."""
    import msgspec

    try:
        with report.buffer() as buf, memoryview(buf) as view:
            # Some Windows tools (PowerShell 5) start JSON files with a UTF-8 byte-order mark.
            body = view[len(_BOM) :] if view[: len(_BOM)] == _BOM else view
            try:
                return msgspec.json.decode(body, type=type)
            finally:
                body.release()
    except msgspec.ValidationError as e:
        raise report.error(f"unexpected content: {e}") from None
    except msgspec.DecodeError as e:
        raise report.error(_describe_json_error(str(e), report.size)) from None
    except RecursionError:  # msgspec decodes recursively: a hostile nesting depth ends here
        raise report.error("JSON nests too deeply to decode; refused") from None


def _describe_json_error(message: str, size: int) -> str:
    if "truncated" in message:
        return f"JSON is truncated (ends after {size} bytes)"
    return message if message.startswith("JSON") else f"not valid JSON: {message}"


def iterparse_xml(report: Report, events: tuple[str, ...] = ("end",)) -> Iterator[tuple[str, Element]]:
    """Stream ``(event, element)`` pairs from an XML report; refuse entities and external references.

    Callers ``clear()`` elements they are done with, so memory stays bounded on large reports.
    """
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    try:
        with report.path.open("rb") as f:
            yield from iterparse(f, events=events, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except ParseError as e:
        raise report.error(f"malformed XML: {e}") from None
    except DefusedXmlException as e:
        raise report.error(f"refused hostile XML ({type(e).__name__}): {e}") from None


def number(value: Any, report: Report, what: str) -> float:
    """``value`` as a float, or a ``ReportError`` saying which attribute was not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise report.error(f"{what} is not a number: {value!r}") from None
