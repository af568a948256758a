"""gate.ui.html: the one escaping and markup helper of the web view."""

from __future__ import annotations

import pytest

from gate.ui.html import Markup, el, escape, external_href, join, link, site_href, text, url
from tests.ui.htmlcheck import EVIL, HOSTILE, audit


@pytest.mark.parametrize("value", HOSTILE + (EVIL,))
def test_a_hostile_value_is_text_in_content_and_in_attributes(value: str) -> None:
    html = el("p", {"title": value, "data-x": value}, value)
    page = audit(html)
    assert page.text() == value
    assert page.tags == [("p", {"title": value, "data-x": value})]


def test_escape_covers_quotes_both_ways_and_passes_markup_through() -> None:
    assert escape("<a href='x'>\"&") == "&lt;a href=&#x27;x&#x27;&gt;&quot;&amp;"
    assert escape(Markup("<b>")) == "<b>"
    assert escape(None) == ""
    assert escape(3) == "3"


def test_markup_concatenation_escapes_the_other_side() -> None:
    assert Markup("<b>") + "<i>" == "<b>&lt;i&gt;"
    assert "<i>" + Markup("<b>") == "&lt;i&gt;<b>"
    assert isinstance(Markup("a") + "b", Markup)


def test_join_flattens_skips_none_and_escapes_strings() -> None:
    assert join(["<", [Markup("<br>"), None, 1]], ", ") == "&lt;, <br>, 1"


def test_text_redacts_secrets_before_escaping() -> None:
    shown = text("push to https://ci:s3cr3t-pass@registry.example.com/app failed; token=abcdef123456 <x>")
    assert "s3cr3t-pass" not in shown and "abcdef123456" not in shown
    assert "&lt;x&gt;" in shown


@pytest.mark.parametrize("tag", ["script", "style", "SCRIPT", "iframe", "base", "x y", "a>", ""])
def test_el_refuses_element_names_that_could_run_or_inject(tag: str) -> None:
    with pytest.raises(ValueError):
        el(tag)


@pytest.mark.parametrize("name", ["style", "onclick", "onmouseover", "ONLOAD", "srcdoc", "formaction", 'x"y', "a b", ""])
def test_el_refuses_attribute_names_that_could_run_or_inject(name: str) -> None:
    with pytest.raises(ValueError):
        el("div", {name: "x"})


def test_url_attributes_take_only_built_urls() -> None:
    with pytest.raises(ValueError, match="url"):
        el("a", {"href": "javascript:alert(1)"})
    with pytest.raises(ValueError, match="url"):
        el("form", {"action": "/x"})  # even a harmless literal: URLs are built, never passed raw
    assert el("a", {"href": url("/x")}, "x") == '<a href="/x">x</a>'


def test_attribute_spellings_booleans_and_void_elements() -> None:
    assert el("input", {"type": "checkbox", "checked": True, "disabled": False, "class_": "c", "aria_label": "l"}) == (
        '<input type="checkbox" checked class="c" aria-label="l">'
    )
    with pytest.raises(ValueError):
        el("br", None, "content")
    assert el("svg", {"viewBox": "0 0 1 1"}, svg=True) == '<svg viewBox="0 0 1 1"></svg>'
    with pytest.raises(ValueError):
        el("svg", {"onLoad": "x"}, svg=True)


def test_url_encodes_segments_and_query_and_drops_empty_parameters() -> None:
    assert url("/decisions", None, "../../api?x=1#f") == "/decisions/..%2F..%2Fapi%3Fx%3D1%23f"
    built = url("/decisions", {"image": 'a&b=c"<', "env": "", "rule": None, "waived": False, "x": ["1", "2"]})
    assert built == "/decisions?image=a%26b%3Dc%22%3C&amp;x=1&amp;x=2"
    assert url("/decisions", [("env", "prod")]) == "/decisions?env=prod"
    for bad in ("decisions", "//evil.example/x", "https://evil.example/"):
        with pytest.raises(ValueError):
            url(bad)


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "data:text/html,<script>", "//evil.example/",
     "/relative", "vbscript:x", "http:/no-host", "https://ok.example/\"onmouseover=x", "https://ok.example/\nx",
     "https://[::1", 42, None],
)
def test_external_href_refuses_all_but_http_urls_with_a_host(value: object) -> None:
    assert external_href(value) is None


def test_external_href_passes_http_urls_with_credentials_redacted() -> None:
    assert external_href("https://ci.example.com/run/1?a=1&b=2") == "https://ci.example.com/run/1?a=1&amp;b=2"
    shown = external_href("https://user:hunter2secret@git.example.com/org/repo/commit/abc")
    assert shown is not None and "hunter2secret" not in shown


def test_link_without_a_target_is_just_its_content() -> None:
    assert link(None, "<x>") == "&lt;x&gt;"
    assert link(external_href("javascript:alert(1)"), "run") == "run"
    assert link(url("/a"), "a", {"id": "l"}) == '<a href="/a" id="l">a</a>'


@pytest.mark.parametrize(
    "value",
    ["https://evil.example/api/v1/x", "//evil.example/api/v1/x", "javascript:alert(1)", "/api/../admin", "/api/./x",
     "api/v1/x", "/other/x", "/api/v1/x\nSet-Cookie: a", "/api\\v1", None, 5, "http:/api/v1/x"],
)
def test_site_href_refuses_what_is_not_a_path_of_this_site_under_the_prefix(value: object) -> None:
    assert site_href(value, ("/api/",)) is None


def test_site_href_rebuilds_path_and_query() -> None:
    assert site_href("/api/v1/decisions.csv?env=prod&image=a%20b&x=", ("/api/",)) == (
        "/api/v1/decisions.csv?env=prod&amp;image=a+b"
    )
    assert site_href('/api/v1/x"<y>', ("/api/",)) == "/api/v1/x%22%3Cy%3E"
