"""Reading the web view's HTML back the way a browser would, to check what could run in it.

``audit(html)`` parses a page with the standard library's HTML parser (the same tokenizer rules a
browser follows for start tags, attributes and character references) and returns every element,
attribute and text node, so tests can assert on structure: no ``<script>``/``<style>`` element,
no ``on*`` or ``style`` attribute, every ``href``/``action``/``src`` a site path or an http(s) URL,
and each hostile value present as *text*, exactly as it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

#: values a rule message, an image name or a waiver reason might carry to attack an auditor's browser
HOSTILE: tuple[str, ...] = (
    "<script>window.__xss=1</script>",
    '"onmouseover="window.__xss=1',
    "'><img src=x onerror=window.__xss=1>",
    "javascript:window.__xss=1",
    "</title></textarea><svg onload=window.__xss=1>",
    "<style>body{display:none}</style>",
    "&lt;script&gt;already-escaped&lt;/script&gt;",
    "]]><!-- --><a href=//evil.example/>x</a>",
)
#: the one value every test seeds everywhere (all the tricks at once)
EVIL = "<script>window.__xss=1</script>\"onmouseover=\"window.__xss=1' onfocus='x'><img src=x onerror=alert(1)>&amp;"


@dataclass
class Page:
    """What the parser saw."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attrs(self, name: str) -> list[str]:
        """Every value of attribute ``name``, in document order."""
        return [a[name] or "" for _, a in self.tags if name in a]

    def text(self) -> str:
        """All text nodes joined (character references resolved)."""
        return "".join(self.texts)

    def by_id(self, element_id: str) -> tuple[str, dict[str, str | None]]:
        """The element with this id (exactly one)."""
        found = [t for t in self.tags if t[1].get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
        return found[0]


class _Parser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.page.texts.append(data)

    def handle_comment(self, data: str) -> None:
        self.page.errors.append(f"comment in output: {data!r}")


def audit(html: str) -> Page:
    """Parse ``html`` and assert nothing in it would run or restyle the page."""
    page = Page()
    parser = _Parser(page)
    parser.feed(html)
    parser.close()
    assert not page.errors, page.errors
    for tag, attrs in page.tags:
        assert tag not in ("script", "style", "iframe", "object", "embed", "base", "img"), f"<{tag}> in output"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler attribute {name}={value!r} on <{tag}>"
            assert name not in ("style", "srcdoc", "formaction"), f"{name} attribute on <{tag}>"
            if name in ("href", "src", "action", "xlink:href"):
                target = value or ""
                assert (target.startswith("/") and not target.startswith("//")) or target.startswith(
                    ("http://", "https://")
                ), f"{name}={target!r} on <{tag}>"
    return page
