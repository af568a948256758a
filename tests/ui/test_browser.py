"""`gate serve --ui` in a real browser: Debian's headless Chromium, driven by selenium through Debian's
chromedriver, against the server started as a subprocess (exactly as a person starts it) on a decision
log made through the real CLI — allows, denies, a waiver, a refused promotion — whose free-text values
(a rule message built from a hostile package name, a finding title and URL, a waiver reason and
approver, the CI actor) carry HTML and JavaScript.

What a person does: filter the table, share the URL, page through it, open a decision, search its
findings, follow its events, download the filtered set as CSV and JSON, press "verify". What must never
happen: a script from a stored value runs (``window.__xss`` stays undefined, no alert, no CSP
violation reported), or a page is served without the strict Content-Security-Policy.

Every test saves a screenshot under ``test-artifacts/screenshots/`` (gitignored; CI uploads the folder,
docs/ci.md). Chromium missing is a failure naming .ci/system-packages, never a skip: like PostgreSQL
and the registry, it is a component the suite needs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA, ROOT

pytestmark = [pytest.mark.server, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
#: a name the browser resolves to 127.0.0.1, as a rebinding attacker's DNS would
REBOUND = "attacker.example"
#: every wait for the browser or the server is bounded by this (a hang fails; nothing asserts a duration)
WAIT = 30.0

#: the Content-Security-Policy docs/ui.md promises on every response
CSP = {
    "default-src": "'none'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}

# --- hostile values: each would run a script, or set window.__xss, if a page emitted it unescaped ----
XSS_PACKAGE = "spring-beans<script>window.__xss='package'</script>"
XSS_VERSION = "5.3.15\"><img src=x onerror=\"window.__xss='version'\">"
XSS_TITLE = "<svg onload=\"window.__xss='title'\"></svg>RCE via data binding"
XSS_URL = "javascript:window.__xss='url'"
XSS_REASON = "not reachable</td><script>window.__xss='reason'</script><td>"
XSS_APPROVER = "secops@example.com\" onmouseover=\"window.__xss='approver'\" x=\""
XSS_ACTOR = "<img src=x onerror=alert('actor')>"
XSS_QUERY = "\"><script>window.__xss='query'</script>"
#: `gate evaluate` refuses this reference (gate.imageref); it reaches the log only as a row another tool wrote
XSS_IMAGE = "registry.example.com/shop/<script>window.__xss='image'</script>\" onmouseover=\"window.__xss='image2'"
WAIVER_ID = "W-0042"

CART = "registry.example.com/shop/cart"
PAYMENTS = "registry.example.com/shop/payments"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def digest(byte: str) -> str:
    return "sha256:" + byte * 32


@dataclass(frozen=True)
class Seeded:
    """The log the server reads, and what the CLI said about it."""

    #: the log's address: a SQLite path or a PostgreSQL URL
    store: str
    env: dict[str, str]
    #: name in the plan → decision id
    ids: dict[str, str]
    #: name in the plan → outcome ("allow" / "deny")
    outcomes: dict[str, str]
    #: `gate decisions verify --format json`
    verify: dict[str, Any]


def gate_cli(env: dict[str, str], *argv: str | Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a subprocess (the real entry point, the real exit code)."""
    proc = subprocess.run(
        [sys.executable, "-m", "gate", *map(str, argv)], env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode in ok, f"gate {' '.join(map(str, argv))}: exit {proc.returncode}\n{proc.stderr}"
    return proc


def hostile_report(folder: Path) -> Path:
    """The real Spring4Shell Trivy report, its CVE-2022-22965 entry rewritten with hostile strings: the
    policy's deny message quotes the package and version, the findings table shows the title and URL."""
    report = json.loads((DATA / "trivy" / "trivy-image-spring4shell-jre11-jar.json").read_text())
    hits = 0
    for result in report["Results"]:
        for vuln in result.get("Vulnerabilities") or []:
            if vuln["VulnerabilityID"] == "CVE-2022-22965":
                vuln.update(PkgName=XSS_PACKAGE, InstalledVersion=XSS_VERSION, Title=XSS_TITLE, PrimaryURL=XSS_URL)
                hits += 1
    assert hits == 1
    path = folder / "trivy-spring4shell-hostile.json"
    path.write_text(json.dumps(report))
    return path


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """The log on SQLite (every test but the PostgreSQL one)."""
    folder = tmp_path_factory.mktemp("ui-log")
    return seed(folder, str(folder / "decisions.db"))


def seed(folder: Path, store: str) -> Seeded:
    """A decision log made by `gate evaluate` and `gate promote` as a pipeline makes it (subprocesses,
    real reports, the shipped policy library), on its own signing key, which the server trusts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATE_", "GITHUB_", "CI_", "GITLAB_"))}
    for var in ("BUILD_URL", "GIT_COMMIT", "BUILD_USER_ID"):
        env.pop(var, None)
    env.update(XDG_STATE_HOME=str(folder / "state"), XDG_CACHE_HOME=str(folder / "cache"))
    gate_cli(env, "keys", "generate", "--out", folder / "keys")
    env.update(
        GATE_DECISION_STORE=store,
        GATE_SIGNING_KEY=str(folder / "keys" / "gate-signing.pem"),
        GATE_TRUSTED_KEYS=str(folder / "keys" / "gate-signing.pub.pem"),
        GATE_CONTEXT_PIPELINE_URL="https://ci.example.com/shop/pipelines/7",
        GATE_CONTEXT_COMMIT="c0ffee" * 6 + "c0ff",
    )
    hostile = hostile_report(folder)
    coverage = DATA / "coverage" / "cobertura-java-cobertura-1.9-maven-example.xml"
    waivers = folder / "waivers.json"
    waivers.write_text(json.dumps({"waivers": [{
        "id": WAIVER_ID, "rule": "CVE-2022-22965", "reason": XSS_REASON, "approved_by": XSS_APPROVER,
        "expires": (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }]}))
    # (name, image, digest byte, env, reports, extra args, actor, exit code)
    plan: list[tuple[str, str, str, str, tuple[Path, ...], tuple[str | Path, ...], str, int]] = [
        ("cart_prod", CART, "a1", "prod", tuple(DATA / r for r in CLEAN), (), "alice", 0),
        ("payments_deny", PAYMENTS, "b2", "prod", (hostile, coverage), (), XSS_ACTOR, 1),
        ("payments_waived", PAYMENTS, "c3", "prod", (hostile, coverage), ("--data", waivers), "bob", 0),
        ("cart_staging", CART, "d4", "staging", tuple(DATA / r for r in CLEAN), (), "bob", 0),
        ("payments_dev", PAYMENTS, "e5", "dev", (hostile, coverage), (), "carol", 1),
        ("cart_dev", CART, "f6", "dev", tuple(DATA / r for r in CLEAN), (), "carol", 0),
        ("cart_prod_2", CART, "a7", "prod", tuple(DATA / r for r in CLEAN), (), "dave", 0),
    ]
    ids: dict[str, str] = {}
    outcomes: dict[str, str] = {}
    for name, image, byte, environment, reports, extra, actor, code in plan:
        argv: list[str | Path] = ["evaluate", "--env", environment, "--image", f"{image}:1.0@{digest(byte)}"]
        for report in reports:
            argv += ["--report", f"auto={report}"]
        argv += [*extra, "--format", "json"]
        made = json.loads(gate_cli({**env, "GATE_CONTEXT_ACTOR": actor}, *argv, ok=(code,)).stdout)
        ids[name] = made["decision_id"]
        outcomes[name] = made["outcome"]
    assert outcomes["payments_waived"] == "allow" and outcomes["payments_deny"] == "deny"
    # a promotion the gate refuses (the decision is a deny): an event in the log, no registry needed
    gate_cli(
        {**env, "GATE_CONTEXT_ACTOR": XSS_ACTOR}, "promote", "--decision", ids["payments_deny"], "--target", "127.0.0.1:9/shop/payments:1.0",
        "--gitops-repo", folder / "no-gitops", "--gitops-path", "apps/prod/kustomization.yaml", ok=(1,),
    )
    # the newest record: that allow with a hostile image name, appended (re-chained, signed) through the store API
    # -- hand-made, named so: it stands for a row another tool wrote, since the CLI refuses such a reference
    ids["hostile_image"] = append_with_image(env, store, XSS_IMAGE)
    outcomes["hostile_image"] = "allow"
    verify = json.loads(gate_cli(env, "decisions", "verify", "--format", "json").stdout)
    assert verify["ok"] and verify["head"]
    return Seeded(store, env, ids, outcomes, verify)


def append_with_image(env: dict[str, str], store: str, image: str) -> str:
    """Append a copy of the log's newest decision with ``image`` as its artifact's image, signed by the log's
    key; returns its decision id."""
    import msgspec

    from gate.decisions.interface import DecisionQuery
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GATE_SIGNING_KEY", env["GATE_SIGNING_KEY"])
        mp.setenv("XDG_STATE_HOME", env["XDG_STATE_HOME"])
        log = open_store(store)
        try:
            newest = next(iter(log.query(DecisionQuery(limit=1))))
            copy = msgspec.structs.replace(
                newest, decision_id=newest.decision_id[:-4] + "beef", artifact={**(newest.artifact or {}), "image": image},
            )
            return str(log.append(copy, load_signer()).decision_id)
        finally:
            log.close()


# --- the server --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running `gate serve --ui`."""

    url: str
    proc: subprocess.Popen[str]

    def get(self, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request outside the browser (redirects followed): (status, headers, body)."""
        req = urllib.request.Request(self.url + path, method=method, headers=headers or {}, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(env: dict[str, str], folder: Path, *flags: str) -> Iterator[Server]:
    """`gate serve --ui --bind 127.0.0.1:PORT FLAGS` as a subprocess, until the block ends."""
    errlog = folder / "stderr.txt"
    with errlog.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gate", "serve", "--ui", "--bind", f"127.0.0.1:{free_port()}", *flags],
            env=env, stdout=subprocess.DEVNULL, stderr=err, text=True,
        )
    try:
        url = None
        deadline = time.monotonic() + WAIT
        while url is None and time.monotonic() < deadline:
            assert proc.poll() is None, f"gate serve --ui exited {proc.returncode}: {errlog.read_text()}"
            found = re.search(r" on (https?://\S+)", errlog.read_text())
            url = found.group(1).rstrip("/") if found else None
            time.sleep(0.05)
        assert url, f"gate serve --ui printed no 'serving ... on URL': {errlog.read_text()}"
        yield Server(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in errlog.read_text()


@pytest.fixture(scope="module")
def server(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`gate serve --ui` on the seeded log, as a person starts it; stopped at the end."""
    with serving(seeded.env, tmp_path_factory.mktemp("ui-server")) as running:
        yield running


# --- the browser -------------------------------------------------------------------------------------


@dataclass
class Browser:
    """A headless Chromium session and the folder it downloads into."""

    driver: Any
    downloads: Path

    def download_into(self, folder: Path) -> None:
        """Downloads from now on land in ``folder`` (a test's own, so names never collide)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
        self.downloads = folder

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path


def chromium_or_fail() -> None:
    """Fail with what to do when Chromium or its driver is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: `bash .ci/system-packages` installs Debian's chromium and chromium-driver",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium (Debian's) through Debian's chromedriver: Selenium Manager never downloads one;
    no background networking (this machine's network is closed); downloads land in a folder of the test's."""
    chromium_or_fail()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--disable-default-apps", "--disable-extensions",
        # a name an attacker's DNS points at 127.0.0.1 (DNS rebinding), for the Host check
        f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
    })
    # the browser console (CSP violations) and the network log (the headers the browser received)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.set_page_load_timeout(WAIT)
        yield Browser(driver, downloads)
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that drove the browser and failed leaves what the browser showed: FAILED-<test>.png."""
    failed = request.session.testsfailed
    yield
    if "browser" in request.fixturenames and request.session.testsfailed > failed:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        with contextlib.suppress(Exception):  # a browser that died has nothing to show
            request.getfixturevalue("browser").screenshot(f"FAILED-{name}")


# --- helpers -----------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def no_script_ran(browser: Browser) -> None:
    """Nothing from a stored value ran: no marker, no alert, no CSP violation (an injected script the
    CSP blocked would still be an escaping bug), no console error."""
    from selenium.common.exceptions import NoAlertPresentException

    driver = browser.driver
    try:
        alert = driver.switch_to.alert
        text = alert.text
        alert.dismiss()
        pytest.fail(f"an alert opened: {text!r}")
    except NoAlertPresentException:
        pass
    found = driver.execute_script(DOM_CHECK)
    assert found == {"xss": None, "scripts": 0, "javascript_links": [], "event_attributes": []}, found
    # an error page's own status (a 400 or 404 page asked for on purpose) and a missing favicon are not problems
    own_status = driver.current_url + " - Failed to load resource: the server responded with a status of "
    problems = [
        e["message"] for e in driver.get_log("browser")
        if (e["level"] == "SEVERE" or "Content Security" in e["message"])
        and "/favicon.ico " not in e["message"] and not e["message"].startswith(own_status)
    ]
    assert not problems, problems


#: one look at the whole document: the marker, script elements, javascript: links, on…= attributes (any element, SVG too)
DOM_CHECK = """
const all = [...document.querySelectorAll('*')];
return {
  xss: window.__xss === undefined ? null : String(window.__xss),
  scripts: document.scripts.length,
  javascript_links: all.filter(e => ['href', 'src', 'action', 'formaction', 'xlink:href'].some(
      n => (e.getAttribute(n) || '').replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase().startsWith('javascript:')))
    .map(e => e.outerHTML.slice(0, 200)),
  event_attributes: all.flatMap(e => [...e.attributes].filter(a => a.name.toLowerCase().startsWith('on'))
    .map(a => e.tagName + '[' + a.name + ']')),
};
"""


def network(browser: Browser, url: str) -> tuple[dict[str, str], list[str]]:
    """From the browser's network log since it was last read: the response headers of the last document
    loaded from ``url``, and every URL the browser requested."""
    headers: dict[str, str] = {}
    requested: list[str] = []
    for entry in browser.driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
        if message.get("method") == "Network.responseReceived":
            response = message["params"]["response"]
            if message["params"].get("type") == "Document" and response["url"].startswith(url):
                headers = {k.lower(): v for k, v in response["headers"].items()}
    return headers, requested


def parse_csp(value: str) -> dict[str, str]:
    directives = (d.strip().split(None, 1) for d in value.split(";") if d.strip())
    return {d[0].lower(): (d[1].strip() if len(d) > 1 else "") for d in directives}


def visible_text(browser: Browser) -> str:
    return str(browser.driver.find_element("css selector", "body").text)


def decision_links(browser: Browser) -> list[str]:
    """The decision ids the page's table links to, in page order."""
    ids = []
    for a in browser.driver.find_elements("css selector", "table a[href*='/decisions/']"):
        found = re.search(r"/decisions/([0-9a-f-]{36})", a.get_attribute("href") or "")
        if found and found.group(1) not in ids:
            ids.append(found.group(1))
    return ids


def wait_download(browser: Browser, suffix: str, before: set[str]) -> Path:
    """The file a click just downloaded (complete: no .crdownload left)."""

    def done() -> Path | None:
        new = [p for p in browser.downloads.iterdir() if p.name not in before]
        if any(p.name.endswith(".crdownload") for p in new):
            return None
        found = [p for p in new if p.name.endswith(suffix)]
        return found[0] if found else None

    path: Path = wait_for(done, f"a {suffix} download in {browser.downloads}")
    return path



def cli_ids(seeded: Seeded, *flags: str) -> list[str]:
    """`gate decisions list FLAGS --format json`: the decision ids, newest first."""
    listed = json.loads(gate_cli(seeded.env, "decisions", "list", *flags, "--format", "json").stdout)
    return [d["decision_id"] for d in listed["decisions"]]


def open_page(browser: Browser, server: Server, path: str) -> None:
    browser.driver.get(server.url + path)
    wait_for(lambda: browser.driver.execute_script("return document.readyState") == "complete", f"{path} to load")


def submit(browser: Browser, form_id: str) -> None:
    """Press the form's submit button and wait for the page it leads to."""
    old = browser.driver.find_element("css selector", "html")
    browser.driver.find_element("css selector", f"#{form_id} button[type=submit]").click()
    wait_for(lambda: is_stale(old), f"#{form_id} to be answered")


def click(browser: Browser, selector: str) -> None:
    """Follow a link and wait for the page it leads to."""
    old = browser.driver.find_element("css selector", "html")
    browser.driver.find_element("css selector", selector).click()
    wait_for(lambda: is_stale(old), f"{selector} to lead somewhere")


def is_stale(element: Any) -> bool:
    """The page ``element`` was on is gone (and the next one has loaded)."""
    from selenium.common.exceptions import WebDriverException

    try:
        element.tag_name
    except WebDriverException:  # stale, or "does not belong to the document" while the new one arrives
        return bool(element.parent.execute_script("return document.readyState") == "complete")
    return False


def query_of(browser: Browser) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(browser.driver.current_url).query))


def text_of(browser: Browser, selector: str) -> str:
    return str(browser.driver.find_element("css selector", selector).text)


# --- the seeded log, as the CLI sees it ---------------------------------------------------------------


def test_the_seeded_log_holds_what_the_pages_show(seeded: Seeded) -> None:
    assert cli_ids(seeded) == list(reversed(seeded.ids.values()))
    shown = json.loads(gate_cli(seeded.env, "decisions", "show", seeded.ids["payments_deny"], "--format", "json").stdout)
    assert any(XSS_PACKAGE in v["message"] and XSS_VERSION in v["message"] for v in shown["violations"])
    assert shown["context"]["actor"] == XSS_ACTOR
    waived = json.loads(gate_cli(seeded.env, "decisions", "show", seeded.ids["payments_waived"], "--format", "json").stdout)
    assert [(w["id"], w["reason"], w["approved_by"]) for w in waived["waivers"]] == [(WAIVER_ID, XSS_REASON, XSS_APPROVER)]
    events = json.loads(gate_cli(seeded.env, "decisions", "events", "--format", "json").stdout)["events"]
    assert [(e["type"], e["outcome"], e["decision_ids"]) for e in events] == [
        ("promotion", "refused", [seeded.ids["payments_deny"]]),
    ]


# --- the decisions table: filters, shareable URLs, pages, sorting -----------------------------------------

#: (what is typed into the filter form: field → value, the same filter as `gate decisions list` flags)
FILTERS: list[tuple[dict[str, str], tuple[str, ...]]] = [
    ({"env": "prod"}, ("--env", "prod")),
    ({"env": "prod", "outcome": "allow"}, ("--env", "prod", "--outcome", "allow")),
    ({"outcome": "deny", "rule": "cve-2022-22965"}, ("--outcome", "deny", "--rule", "cve-2022-22965")),
    ({"waiver": WAIVER_ID}, ("--waiver", WAIVER_ID)),
    ({"waived": "1"}, ("--waived",)),
    ({"image": PAYMENTS, "env": "dev"}, ("--image", PAYMENTS, "--env", "dev")),
    ({"digest": digest("a1")}, ("--digest", digest("a1"))),
    ({"finding": "CVE-2022-22965", "env": "prod"}, ("--finding", "CVE-2022-22965", "--env", "prod")),
    ({"since": "1h"}, ("--since", "1h")),
    ({"until": "2000-01-01T00:00:00Z"}, ("--until", "2000-01-01T00:00:00Z")),
]


def fill_form(browser: Browser, fields: dict[str, str]) -> None:
    from selenium.webdriver.support.ui import Select

    for name, value in fields.items():
        field = browser.driver.find_element("css selector", f"#filters [name={name}]")
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        elif field.get_attribute("type") == "checkbox":
            if not field.is_selected():
                field.click()
        else:
            field.clear()
            field.send_keys(value)


@pytest.mark.parametrize(("fields", "flags"), FILTERS, ids=["-".join(f) for f, _ in FILTERS])
def test_each_filter_shows_what_the_cli_lists_and_its_url_can_be_shared(
    browser: Browser, server: Server, seeded: Seeded, fields: dict[str, str], flags: tuple[str, ...]
) -> None:
    open_page(browser, server, "/decisions")
    fill_form(browser, fields)
    submit(browser, "filters")
    expected = cli_ids(seeded, *flags)
    shown = decision_links(browser)
    assert shown == expected
    assert {k: v for k, v in query_of(browser).items() if v} == fields  # only what was typed, as typed
    # the URL alone brings back the same table (a link an auditor pastes into a ticket)
    shared = browser.driver.current_url
    open_page(browser, server, "/")
    browser.driver.get(shared)
    assert decision_links(browser) == expected
    for name, value in fields.items():  # and the form shows the filters it was answered with
        field = browser.driver.find_element("css selector", f"#filters [name={name}]")
        assert (field.is_selected() if field.get_attribute("type") == "checkbox" else field.get_attribute("value") == value)
    if not expected:
        assert browser.driver.find_elements("css selector", ".empty")
    browser.screenshot("decisions-filtered-" + "-".join(sorted(fields)))
    no_script_ran(browser)


def test_the_decisions_page_lists_the_log_newest_first(browser: Browser, server: Server, seeded: Seeded) -> None:
    open_page(browser, server, "/decisions")
    assert decision_links(browser) == list(reversed(seeded.ids.values()))
    table = text_of(browser, "#decisions")
    assert "registry.example.com/shop/payments:1.0@" + digest("c3")[:19] in table and WAIVER_ID in table
    browser.screenshot("decisions")
    no_script_ran(browser)


def test_a_bad_filter_is_a_400_page_naming_it(browser: Browser, server: Server, seeded: Seeded) -> None:
    cli = gate_cli(seeded.env, "decisions", "list", "--since", "yesterday-ish", ok=(2,))
    open_page(browser, server, "/decisions?since=yesterday-ish")
    reason = text_of(browser, "#error")
    assert "yesterday-ish" in reason and "yesterday-ish" in cli.stderr and "\n" not in reason
    status, _, body = server.get("/api/v1/decisions?since=yesterday-ish")
    assert status == 400 and b"Traceback" not in body
    browser.screenshot("decisions-bad-filter")
    no_script_ran(browser)


def test_pages_follow_one_another_with_the_filters_kept(browser: Browser, server: Server, seeded: Seeded) -> None:
    for path, flags in (("/decisions?limit=2", ()), ("/decisions?env=prod&limit=1", ("--env", "prod"))):
        open_page(browser, server, path)
        seen: list[str] = []
        pages = 0
        while True:
            pages += 1
            page = decision_links(browser)
            assert page and len(page) <= int(query_of(browser)["limit"])
            seen += page
            if not browser.driver.find_elements("css selector", "#next-page"):
                break
            click(browser, "#next-page")
            assert query_of(browser).get("env") == dict(urllib.parse.parse_qsl(path.split("?")[1])).get("env")
            assert pages < 20
        assert seen == cli_ids(seeded, *flags)
        limit = int(dict(urllib.parse.parse_qsl(path.split("?")[1]))["limit"])
        assert pages == -(-len(seen) // limit)  # no empty last page
    # back to the newest page
    click(browser, "#first-page")
    assert decision_links(browser) == cli_ids(seeded, "--env", "prod")[:1]
    browser.screenshot("decisions-paged")


def test_the_time_column_turns_the_order_around(browser: Browser, server: Server, seeded: Seeded) -> None:
    newest_first = list(reversed(seeded.ids.values()))
    open_page(browser, server, "/decisions?env=prod")
    click(browser, "#sort-time")
    assert query_of(browser) == {"env": "prod", "sort": "oldest"}
    assert decision_links(browser) == list(reversed(cli_ids(seeded, "--env", "prod")))
    browser.screenshot("decisions-oldest-first")
    click(browser, "#sort-time")
    assert query_of(browser).get("sort", "newest") == "newest"
    assert decision_links(browser) == cli_ids(seeded, "--env", "prod")
    open_page(browser, server, "/decisions?sort=oldest&limit=3")
    seen = decision_links(browser)
    click(browser, "#next-page")
    seen += decision_links(browser)
    assert seen == list(reversed(newest_first))[:6]


# --- one decision ----------------------------------------------------------------------------------------


def test_a_row_opens_its_decision_with_reasons_triage_findings_chain_and_events(
    browser: Browser, server: Server, seeded: Seeded
) -> None:
    deny = seeded.ids["payments_deny"]
    shown = json.loads(gate_cli(seeded.env, "decisions", "show", deny, "--format", "json").stdout)
    open_page(browser, server, "/decisions?env=prod&outcome=deny")
    click(browser, f"#decisions a[href$='/decisions/{deny}']")
    assert urllib.parse.urlsplit(browser.driver.current_url).path == f"/decisions/{deny}"
    facts = text_of(browser, "#facts")
    assert deny in facts and "deny" in facts and XSS_ACTOR in facts
    reasons = text_of(browser, "#violations")
    assert "vulnerabilities.severity" in reasons and XSS_PACKAGE in reasons and "solution" in reasons
    assert text_of(browser, "#signature-status") == "trusted"
    chain = text_of(browser, "#chain")
    assert shown["hash"] in chain and shown["signing_key"] in chain
    assert shown["policy"]["digest"] in text_of(browser, "#policy")
    scanners = text_of(browser, "#scanners")
    assert all(s["report_sha256"] in scanners for s in shown["scanners"])
    # the refused promotion of this decision, and the decision it names
    events = text_of(browser, "#events")
    assert "promotion" in events and "refused" in events
    browser.screenshot("decision-deny")
    no_script_ran(browser)
    # the findings, searched server-side (no script): the one CVE, then something no finding has
    total = len(browser.driver.find_elements("css selector", "#findings tbody tr"))
    browser.driver.find_element("css selector", "#f-q").send_keys("cve-2022-22965")
    submit(browser, "findings-search")
    rows = browser.driver.find_elements("css selector", "#findings tbody tr")
    assert 1 <= len(rows) <= total and all("CVE-2022-22965" in r.text for r in rows)
    assert XSS_TITLE in text_of(browser, "#findings")
    assert query_of(browser) == {"q": "cve-2022-22965"}
    browser.screenshot("decision-findings-search")
    no_script_ran(browser)
    browser.driver.find_element("css selector", "#f-q").clear()
    browser.driver.find_element("css selector", "#f-q").send_keys(XSS_QUERY)
    submit(browser, "findings-search")
    assert not browser.driver.find_elements("css selector", "#findings tbody tr")
    assert browser.driver.find_element("css selector", "#f-q").get_attribute("value") == XSS_QUERY
    no_script_ran(browser)
    # its JSON, as the API serves it: the record `gate decisions show --format json` prints
    click(browser, "#decision-json")
    served = json.loads(browser.driver.find_element("css selector", "body").text)
    record = served.get("decision", served)
    assert record["decision_id"] == deny and record["hash"] == shown["hash"]


def test_a_waived_decision_shows_its_waiver_as_text(browser: Browser, server: Server, seeded: Seeded) -> None:
    waived = seeded.ids["payments_waived"]
    open_page(browser, server, f"/decisions/{waived}")
    triage = text_of(browser, "#triage")
    assert WAIVER_ID in triage and XSS_REASON in triage and XSS_APPROVER in triage
    # the waiver links to every decision that applied it
    click(browser, f"#triage a[href*='waiver={WAIVER_ID}']")
    assert decision_links(browser) == cli_ids(seeded, "--waiver", WAIVER_ID) == [waived]
    browser.screenshot("decision-waived")
    no_script_ran(browser)


def test_an_unknown_decision_is_a_404_page(browser: Browser, server: Server) -> None:
    open_page(browser, server, "/decisions/01a20000-0000-7000-8000-000000000000")
    assert "01a20000-0000-7000-8000-000000000000" in text_of(browser, "#error")
    assert server.get("/decisions/01a20000-0000-7000-8000-000000000000")[0] == 404
    no_script_ran(browser)


# --- events, waivers, trends -----------------------------------------------------------------------------


def test_the_events_page_links_each_promotion_to_its_decision(browser: Browser, server: Server, seeded: Seeded) -> None:
    open_page(browser, server, "/events")
    events = text_of(browser, "#events")
    assert "promotion" in events and "refused" in events and "127.0.0.1:9/shop/payments:1.0" in events
    assert XSS_ACTOR in events  # who asked for it, as text
    browser.screenshot("events")
    no_script_ran(browser)
    click(browser, f"#events a[href$='/decisions/{seeded.ids['payments_deny']}']")
    assert seeded.ids["payments_deny"] in text_of(browser, "#facts")


def test_the_waivers_page_shows_the_expiring_waiver(browser: Browser, server: Server) -> None:
    open_page(browser, server, "/waivers")
    expiring = text_of(browser, "#waivers-expiring")
    assert WAIVER_ID in expiring and "CVE-2022-22965" in expiring and "expiring" in expiring
    assert WAIVER_ID in text_of(browser, "#waivers-in-use")
    browser.screenshot("waivers")
    no_script_ran(browser)


def test_the_trends_page_draws_its_charts_on_the_server(browser: Browser, server: Server, seeded: Seeded) -> None:
    open_page(browser, server, "/trends")
    assert browser.driver.find_elements("css selector", "#outcome-charts svg")
    assert "vulnerabilities.severity" in text_of(browser, "#blocking-rules")
    assert "CVE-2022-22965" in text_of(browser, "#blocking-findings")
    stats = json.loads(gate_cli(seeded.env, "decisions", "stats", "--format", "json").stdout)
    assert f"{stats['total']} decisions" in text_of(browser, "main")
    browser.screenshot("trends")
    no_script_ran(browser)
    click(browser, "#blocking-findings a[href*='CVE-2022-22965']")
    assert decision_links(browser) == cli_ids(seeded, "--finding", "CVE-2022-22965")


# --- downloads -------------------------------------------------------------------------------------------


def test_csv_and_json_downloads_are_the_filtered_set_as_the_cli_writes_it(
    browser: Browser, server: Server, seeded: Seeded, tmp_path: Path
) -> None:
    browser.download_into(tmp_path / "downloads")
    open_page(browser, server, "/decisions?env=prod&limit=1")
    before = {p.name for p in browser.downloads.iterdir()}
    browser.driver.find_element("css selector", "#download-csv").click()
    got_csv = wait_download(browser, ".csv", before)
    cli_csv = gate_cli(seeded.env, "decisions", "list", "--env", "prod", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(got_csv.read_text(encoding="utf-8"))))
    assert rows == list(csv.DictReader(io.StringIO(cli_csv)))  # every prod decision, not just the page's one
    assert [r["decision_id"] for r in rows] == cli_ids(seeded, "--env", "prod")
    assert any(r["actor"] == "'" + XSS_ACTOR or r["actor"] == XSS_ACTOR for r in rows)
    before = {p.name for p in browser.downloads.iterdir()}
    browser.driver.find_element("css selector", "#download-json").click()
    got_json = json.loads(wait_download(browser, ".json", before).read_text(encoding="utf-8"))
    cli_json = json.loads(gate_cli(seeded.env, "decisions", "list", "--env", "prod", "--format", "json").stdout)
    assert got_json["decisions"] == cli_json["decisions"]
    browser.screenshot("decisions-downloads")
    no_script_ran(browser)


# --- the verify button -----------------------------------------------------------------------------------


def integrity_state(browser: Browser) -> str:
    return str(browser.driver.find_element("css selector", "#integrity-state").get_attribute("data-state"))


def test_the_verify_button_runs_verify_and_shows_the_head(browser: Browser, server: Server, seeded: Seeded) -> None:
    open_page(browser, server, "/waivers")
    submit(browser, "integrity")
    # verify runs in the server's background; the page says so until a reload shows its result (no script)
    while integrity_state(browser) == "running":
        browser.screenshot("verify-running")
        wait_for(lambda: json.loads(server.get("/api/v1/integrity")[2])["state"] != "running", "verify to finish")
        browser.driver.refresh()
    assert integrity_state(browser) == "done"
    badge = browser.driver.find_element("css selector", "#integrity-state")
    assert "badge-intact" in (badge.get_attribute("class") or "") and badge.text == "log intact"
    assert f"{seeded.verify['count']} records checked" in (badge.get_attribute("title") or "")
    head = seeded.verify["head"]
    assert browser.driver.find_element("css selector", "#integrity-head [title]").get_attribute("title") == head
    status, _, body = server.get("/api/v1/integrity")
    served = json.loads(body)
    assert status == 200 and served["head"] == head and served["verify"]["ok"] is True
    assert served["verify"]["head"] == head and served["verify"]["count"] == seeded.verify["count"]
    # every page shows the last result
    open_page(browser, server, "/decisions")
    assert integrity_state(browser) == "done" and "log intact" in text_of(browser, "#integrity")
    browser.screenshot("verify")
    no_script_ran(browser)
    # the README's picture (docs/img/ui-decisions.png is a copy): the log up to the hand-made hostile row
    hostile = json.loads(gate_cli(seeded.env, "decisions", "show", seeded.ids["hostile_image"], "--format", "json").stdout)
    open_page(browser, server, "/decisions?" + urllib.parse.urlencode({"until": hostile["timestamp"]}))
    assert seeded.ids["hostile_image"] not in decision_links(browser)
    # the page's own height: the table, and no empty page under it
    height = browser.driver.execute_script(
        "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom) + 24"
        " + window.outerHeight - window.innerHeight"
    )
    browser.driver.set_window_size(1400, int(height))
    try:
        browser.screenshot("readme-decisions")
    finally:
        browser.driver.set_window_size(1400, 1000)


@pytest.mark.parametrize(("headers", "status"), [
    # what Chromium sends with the page's own button under Referrer-Policy: no-referrer (seen above)
    ({"Sec-Fetch-Site": "same-origin", "Origin": "null"}, 200),
    ({"Sec-Fetch-Site": "cross-site", "Origin": "null"}, 403),
    ({"Origin": "null"}, 403),  # no Sec-Fetch-Site to vouch for it: a sandboxed page elsewhere
])
def test_the_verify_post_is_told_apart_by_where_it_comes_from(server: Server, headers: dict[str, str], status: int) -> None:
    assert server.get("/integrity/verify", "POST", headers)[0] == status


def test_an_edited_record_turns_the_badge_red_and_its_page_says_so(
    browser: Browser, seeded: Seeded, tmp_path: Path
) -> None:
    """Someone with write access to the log turns the deny into an allow (record and column alike): the verify
    button finds it, as `gate decisions verify` does, and the decision's page shows its hash no longer matches."""
    import sqlite3

    store = tmp_path / "edited.db"
    with contextlib.closing(sqlite3.connect(seeded.store)) as src, contextlib.closing(sqlite3.connect(store)) as dst:
        src.backup(dst)
        deny = seeded.ids["payments_deny"]
        (blob,) = dst.execute("select record from decisions where decision_id = ?", (deny,)).fetchone()
        record = json.loads(blob)
        assert record["outcome"] == "deny"
        record["outcome"] = "allow"
        dst.execute("update decisions set record = ?, outcome = 'allow' where decision_id = ?",
                    (json.dumps(record, separators=(",", ":")).encode(), deny))
        dst.commit()
    env = {**seeded.env, "GATE_DECISION_STORE": str(store)}
    cli = gate_cli(env, "decisions", "verify", ok=(1,))
    assert deny in cli.stdout
    with serving(env, tmp_path) as edited:
        open_page(browser, edited, f"/decisions/{deny}")
        assert "does NOT match" in text_of(browser, "#hash-status")
        assert "Do not rely on this record" in text_of(browser, "#record-distrust")
        submit(browser, "integrity")
        while integrity_state(browser) == "running":
            wait_for(lambda: json.loads(edited.get("/api/v1/integrity")[2])["state"] != "running", "verify to finish")
            browser.driver.refresh()
        badge = browser.driver.find_element("css selector", "#integrity-state")
        assert "badge-tampered" in (badge.get_attribute("class") or "") and badge.text == "verify FAILED"
        assert "edited" in (badge.get_attribute("title") or "")
        assert urllib.parse.urlsplit(browser.driver.current_url).path == f"/decisions/{deny}"  # back where it was
        verify = json.loads(edited.get("/api/v1/integrity")[2])["verify"]
        assert verify["ok"] is False and verify["head"] is None and verify["first_bad"]["decision_id"] == deny
        browser.screenshot("verify-failed")
        no_script_ran(browser)


# --- no script from a stored value, the CSP on every page -------------------------------------------------

PAGES = ["/", "/decisions", "/events", "/waivers", "/trends", "/decisions?image=" + urllib.parse.quote(XSS_QUERY),
         "/decisions?rule=" + urllib.parse.quote(XSS_QUERY), "/decisions?env=" + urllib.parse.quote(XSS_QUERY)]


def test_no_stored_or_requested_value_runs_as_script(browser: Browser, server: Server, seeded: Seeded) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    pages = PAGES + [f"/decisions/{i}" for i in seeded.ids.values()]
    for path in pages:
        open_page(browser, server, path)
        # hover what shows a hostile value (an injected onmouseover would fire here), and every input
        hostile = browser.driver.find_elements(
            "xpath", "//body//*[contains(text(), '__xss') or contains(text(), 'alert(') or self::input]"
        )
        for element in hostile[:40]:
            if element.is_displayed():
                ActionChains(browser.driver).move_to_element(element).perform()
        no_script_ran(browser)
    # the hostile values are on the pages, as text
    open_page(browser, server, f"/decisions/{seeded.ids['payments_deny']}")
    page = visible_text(browser)
    for value in (XSS_PACKAGE, XSS_VERSION, XSS_TITLE, XSS_ACTOR):
        assert value in page, value
    open_page(browser, server, "/decisions?image=" + urllib.parse.quote(XSS_QUERY))
    assert browser.driver.find_element("css selector", "#f-image").get_attribute("value") == XSS_QUERY
    browser.screenshot("hostile-values")


@pytest.mark.parametrize("injected", [
    "<p>ok</p><script>window.__xss = 1</script>",
    "<a href=' JaVaScript:void(0)'>x</a>",
    "<svg><rect onmouseover='void 0'/></svg>",
    "<img src=x onerror='window.__xss = 2'>",
])
def test_the_checks_would_see_an_injection(browser: Browser, injected: str) -> None:
    """The same checks on a page that does carry an injection (no CSP: a data: URL) fail: they can see one."""
    browser.driver.get("data:text/html," + urllib.parse.quote(injected))
    with pytest.raises(AssertionError):
        no_script_ran(browser)
    browser.driver.get_log("browser")


@pytest.mark.parametrize("path", [*PAGES, "/decisions/01a20000-0000-7000-8000-000000000000", "/decisions?since=nope"])
def test_every_page_arrives_with_the_strict_csp(browser: Browser, server: Server, path: str) -> None:
    browser.driver.get_log("performance")  # drop what earlier pages logged
    open_page(browser, server, path)
    headers, requested = network(browser, server.url + path.split("?")[0])
    assert parse_csp(headers.get("content-security-policy", "")) == CSP, headers
    # nothing is loaded from anywhere but the web view itself (no CDN, no font, no tracker)
    assert requested and all(u.startswith((server.url + "/", "data:")) for u in requested), requested
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"
    # the stylesheet is the package's own, and it applied under the CSP
    assert browser.driver.execute_script(
        "return [...document.styleSheets].every(s => s.href && new URL(s.href).origin === location.origin)"
    )
    assert browser.driver.execute_script("return document.styleSheets.length") >= 1
    no_script_ran(browser)


@pytest.mark.parametrize("path", ["/api/v1/decisions", "/api/v1/events", "/api/v1/stats", "/api/v1/waivers",
                                  "/api/v1/integrity", "/static/gate.css"])
def test_the_api_and_static_files_carry_the_headers_too(server: Server, path: str) -> None:
    status, headers, _ = server.get(path)
    assert status == 200
    assert parse_csp(headers.get("content-security-policy", "")) == CSP
    assert headers.get("x-content-type-options") == "nosniff"
    if path.startswith("/api/"):
        assert headers.get("cache-control") == "no-store"


def test_the_only_form_that_posts_is_the_verify_button(browser: Browser, server: Server, seeded: Seeded) -> None:
    for path in PAGES[:5] + [f"/decisions/{seeded.ids['payments_waived']}"]:
        open_page(browser, server, path)
        posts = browser.driver.find_elements("css selector", "form[method=post i]")
        assert [f.get_attribute("id") or f.find_element("xpath", "..").get_attribute("id") for f in posts] == ["integrity"]


def test_a_page_elsewhere_rebound_to_loopback_reads_nothing(browser: Browser, server: Server, seeded: Seeded) -> None:
    """DNS rebinding: a page of attacker.example, whose name now resolves to 127.0.0.1, asks the web view
    (same origin to the browser). Without a token, only a Host naming this server is answered."""
    port = urllib.parse.urlsplit(server.url).port
    browser.driver.get(f"http://{REBOUND}:{port}/decisions")
    assert not decision_links(browser)
    source = browser.driver.page_source
    assert not any(i in source for i in seeded.ids.values())
    browser.driver.get(f"http://{REBOUND}:{port}/api/v1/decisions.json")
    assert not any(i in browser.driver.page_source for i in seeded.ids.values())
    assert "unexpected Host header" in browser.driver.page_source  # the server's refusal, not a DNS failure
    browser.screenshot("rebinding-refused")
    browser.driver.get_log("browser")  # the refusals, logged by the browser
    # the names of this server are answered
    browser.driver.get(f"http://localhost:{port}/decisions")
    assert decision_links(browser) == cli_ids(seeded)
    no_script_ran(browser)


# --- the same on PostgreSQL --------------------------------------------------------------------------------


def test_on_postgresql_the_pages_show_the_same_log(
    browser: Browser, pg_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A central log on a real PostgreSQL 15 (a throwaway cluster), read with default_transaction_read_only;
    its address carries a password (the cluster trusts, so it is never checked), which nothing shows."""
    folder = tmp_path_factory.mktemp("ui-pg")
    assert "://postgres@" in pg_store_url
    log = seed(folder, pg_store_url.replace("://postgres@", "://postgres:pw-s3cret@"))
    with serving(log.env, folder) as pg:
        open_page(browser, pg, "/decisions")
        assert decision_links(browser) == cli_ids(log) == list(reversed(log.ids.values()))
        fill_form(browser, {"env": "prod", "outcome": "deny"})
        submit(browser, "filters")
        assert decision_links(browser) == cli_ids(log, "--env", "prod", "--outcome", "deny") == [log.ids["payments_deny"]]
        click(browser, f"#decisions a[href$='/decisions/{log.ids['payments_deny']}']")
        assert XSS_PACKAGE in text_of(browser, "#violations") and text_of(browser, "#signature-status") == "trusted"
        assert "refused" in text_of(browser, "#events")
        submit(browser, "integrity")
        while integrity_state(browser) == "running":
            wait_for(lambda: json.loads(pg.get("/api/v1/integrity")[2])["state"] != "running", "verify to finish")
            browser.driver.refresh()
        assert "log intact" in text_of(browser, "#integrity")
        assert browser.driver.find_element("css selector", "#integrity-head [title]").get_attribute("title") == log.verify["head"]
        browser.screenshot("postgresql-decision")
        no_script_ran(browser)
        browser.download_into(folder / "downloads")
        before: set[str] = set()
        open_page(browser, pg, "/decisions?env=prod")
        browser.driver.find_element("css selector", "#download-csv").click()
        rows = list(csv.DictReader(io.StringIO(wait_download(browser, ".csv", before).read_text(encoding="utf-8"))))
        assert [r["decision_id"] for r in rows] == cli_ids(log, "--env", "prod")
        for path in ("/decisions", "/api/v1/integrity", "/trends"):
            assert b"pw-s3cret" not in pg.get(path)[2]
    assert "pw-s3cret" not in (folder / "stderr.txt").read_text()


# --- Chromium missing --------------------------------------------------------------------------------------


def test_without_chromium_the_browser_tests_fail_naming_the_install_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.fail.Exception, match=r"/nonexistent/chromium missing: `bash \.ci/system-packages`"):
        chromium_or_fail()


# --- a token: the browser asks for it (HTTP Basic), the API takes it as a Bearer token -----------------------


def test_with_a_token_the_browser_needs_it_and_then_works_as_before(
    browser: Browser, seeded: Seeded, tmp_path: Path
) -> None:
    token = "s3cret-" + "x" * 24
    (tmp_path / "token").write_text(token + "\n")
    with serving(seeded.env, tmp_path, "--ui-token-file", str(tmp_path / "token")) as locked:
        # no token: 401 everywhere but /health, the body says why and nothing of the log
        open_page(browser, locked, "/decisions")
        assert seeded.ids["payments_deny"] not in browser.driver.page_source
        assert not decision_links(browser)
        browser.driver.get_log("browser")  # the 401 itself, logged by the browser
        for path in ("/decisions", "/api/v1/decisions", "/static/gate.css", "/api/v1/integrity"):
            status, headers, body = locked.get(path)
            assert status == 401 and "Basic" in headers.get("www-authenticate", "") and token.encode() not in body
        assert locked.get("/health")[0] == 200
        # the person types it into the browser's prompt (here: the URL's credentials, what the prompt sends)
        host = urllib.parse.urlsplit(locked.url)
        browser.driver.get(f"http://auditor:{token}@{host.netloc}/decisions")
        assert decision_links(browser) == cli_ids(seeded)
        click(browser, f"#decisions a[href$='/decisions/{seeded.ids['payments_waived']}']")
        assert WAIVER_ID in text_of(browser, "#triage")
        assert browser.driver.execute_script("return document.styleSheets.length") >= 1
        submit(browser, "integrity")
        assert integrity_state(browser) in ("running", "done")
        browser.screenshot("token-auth")
        no_script_ran(browser)
        # an API client sends it as a Bearer token
        req = urllib.request.Request(locked.url + "/api/v1/decisions?limit=1", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            assert resp.status == 200 and json.loads(resp.read())["decisions"]
    assert token not in (tmp_path / "stderr.txt").read_text()


# --- docs/audit.md: every page it names for a question answers -------------------------------------------


def audit_pages() -> list[str]:
    """The page paths of docs/audit.md's table "The questions in the web view"."""
    text = (ROOT / "docs" / "audit.md").read_text()
    table = text.split("## The questions in the web view", 1)[1].split("\n## ", 1)[0]
    paths = []
    for row in table.splitlines():
        cells = row.split(" | ")
        if row.startswith("| ") and len(cells) == 3:
            paths += re.findall(r"`(/[^`]*)`", cells[1])
    return paths


def test_every_page_docs_audit_names_answers_its_question(browser: Browser, server: Server, seeded: Seeded) -> None:
    paths = audit_pages()
    assert len(paths) >= 14 and all(p.startswith(("/decisions", "/events", "/trends", "/waivers", "/api/v1/")) for p in paths)
    shown = json.loads(gate_cli(seeded.env, "decisions", "show", seeded.ids["payments_waived"], "--format", "json").stdout)
    for path in paths:
        concrete = (path.replace("ID", seeded.ids["payments_waived"]).replace("sha256:D", digest("c3"))
                    .replace("sha256:P", shown["policy"]["digest"]))
        status, _, body = server.get(concrete)
        assert status == 200, (concrete, body[:300])
        if not concrete.startswith("/api/"):
            open_page(browser, server, concrete)
            assert not browser.driver.find_elements("css selector", "#error"), (concrete, text_of(browser, "#error"))
            no_script_ran(browser)
