"""The pages as ``gate serve --ui`` serves them, on a log seeded through the CLI (tests/ui/seed.py):
every link and every form a page offers leads to a page or a download the server answers — none to a
400 for a parameter the API does not know, a 404 for a path it does not serve, or a 500 — and every
page, read back with an HTML parser, holds nothing that could run.

The server is the real one (gate.ui.app.make_ui_server on 127.0.0.1, a free port), stopped after
each test. The browser's view (script not run, CSP applied) is tests/ui/test_browser.py's.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.ui.htmlcheck import Page, audit
from tests.ui.seed import HOSTILE, HOSTILE_IMAGE, seed


@dataclass
class Served:
    base: str
    ids: dict[str, str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with _opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    from gate.cli import main
    from gate.ui.app import make_ui_server

    ids = seed(main, tmp_path)
    server = make_ui_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield Served(f"http://{host}:{port}", ids)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def page(served: Served, path: str) -> Page:
    status, headers, body = fetch(served.base + path)
    assert status == 200, (path, status, body[:300])
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in headers[
        "Content-Security-Policy"]
    return audit(body.decode())


def _forms(p: Page) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(method, action, fields as submitted unchanged) of every form, read from the parsed tags."""
    forms: list[tuple[str, str, list[tuple[str, str]]]] = []
    current: list[tuple[str, str]] | None = None
    selected: dict[str, str] = {}
    select_name = ""
    for tag, attrs in p.tags:
        if tag == "form":
            current = []
            forms.append((attrs.get("method") or "get", attrs.get("action") or "", current))
        elif current is None:
            continue
        elif tag == "input" and attrs.get("name"):
            if attrs.get("type") == "checkbox" and "checked" not in attrs:
                continue
            current.append((attrs["name"] or "", attrs.get("value") or ""))
        elif tag == "select":
            select_name = attrs.get("name") or ""
            selected[select_name] = ""
            current.append((select_name, ""))
        elif tag == "option" and "selected" in attrs:
            current[:] = [(n, v) for n, v in current if n != select_name] + [(select_name, attrs.get("value") or "")]
    return forms


def test_every_link_and_form_of_every_page_is_answered(served: Served) -> None:
    start = ["/decisions", "/events", "/waivers", "/trends", f"/decisions/{served.ids['waived']}",
             f"/decisions/{served.ids['hostile']}", f"/decisions/{served.ids['hostile_image']}",
             "/decisions?env=prod&outcome=deny&limit=1", "/decisions?sort=oldest&limit=2"]
    seen: set[str] = set()
    queue = list(start)
    checked = 0
    while queue and checked < 120:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        checked += 1
        status, headers, body = fetch(served.base + path)
        assert status == 200, (path, status, body[:300])
        if not headers["Content-Type"].startswith("text/html"):
            continue
        p = audit(body.decode())
        links = [h for h in p.attrs("href") if h.startswith("/")]
        for method, action, fields in _forms(p):
            if method == "get":
                links.append(action + ("?" + urlencode([(n, v) for n, v in fields if v]) if any(v for _, v in fields) else ""))
        for link in links:
            if link not in seen and (path in start or link.startswith("/api/") or link.startswith("/static/")):
                queue.append(link)
    assert checked > 40, checked


def test_the_hostile_seed_is_text_on_the_served_pages(served: Served) -> None:
    assert HOSTILE_IMAGE in page(served, "/decisions").text()
    assert HOSTILE_IMAGE in page(served, f"/decisions/{served.ids['hostile_image']}").text()
    assert HOSTILE in page(served, f"/decisions/{served.ids['hostile']}").text()
    assert "not reachable " + HOSTILE in page(served, f"/decisions/{served.ids['waived']}").text()


def test_filters_and_search_narrow_what_is_shown(served: Served) -> None:
    listed = page(served, "/decisions?env=staging")
    rows = [a for t, a in listed.tags if t == "a" and (a.get("href") or "").startswith("/decisions/")]
    assert {(a.get("href") or "").rsplit("/", 1)[1] for a in rows} == {served.ids["hostile"]}
    waived = page(served, f"/decisions/{served.ids['waived']}?q=CVE-2022-22965")
    assert "1 of 1 findings" in waived.text()
    nothing = page(served, f"/decisions/{served.ids['waived']}?q=no-such-thing")
    assert "0 of 1 findings" in nothing.text() and "No finding matches." in nothing.text()


def test_a_bad_filter_is_a_page_with_the_reason(served: Served) -> None:
    status, headers, body = fetch(served.base + "/decisions?since=yesterday-ish")
    assert status == 400 and headers["Content-Type"].startswith("text/html")
    p = audit(body.decode())
    assert p.by_id("error") and "since" in p.text() and "yesterday-ish" in p.text()


def test_the_verify_button_comes_back_to_the_page_with_the_result(served: Served) -> None:
    here = "/decisions?env=prod"
    p = page(served, here)
    ((method, action, fields),) = [f for f in _forms(p) if f[0] == "post"]
    assert (method, action, fields) == ("post", "/integrity/verify", [("next", here)])
    status, headers, _ = fetch(served.base + action, data=urlencode(fields).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["Location"] == here
    for _ in range(200):  # verify runs in a thread; the page reloads itself (meta refresh) until done
        p = page(served, here)
        state = p.by_id("integrity-state")[1]["data-state"]
        if state != "running":
            break
        time.sleep(0.05)
    assert state == "done" and "log intact" in p.text()
    assert p.by_id("integrity-head")


def test_the_stylesheet_is_served_from_the_package(served: Served) -> None:
    status, headers, body = fetch(served.base + "/static/gate.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert b".outcome-deny" in body
    assert urlsplit(served.base).hostname == "127.0.0.1"


def test_an_unknown_hostile_decision_id_is_a_404_page_showing_it_as_text(served: Served) -> None:
    status, headers, body = fetch(served.base + "/decisions/%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E")
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    p = audit(body.decode())
    assert "<script>window.__xss=1</script>" in p.text()
