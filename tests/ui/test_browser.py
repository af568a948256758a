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
docs/ci.md). Chromium missing is a failure naming .ci/system-packages, never a silent skip; only
``GATE_SKIP_BROWSER=1``, set on purpose, skips these tests.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
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
WAIVER_ID = "W-0042"

CART = "registry.example.com/shop/cart"
PAYMENTS = "registry.example.com/shop/payments"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def digest(byte: str) -> str:
    return "sha256:" + byte * 32


@dataclass(frozen=True)
class Seeded:
    """The log the server reads, and what the CLI said about it."""

    store: Path
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
    """A decision log made by `gate evaluate` and `gate promote` as a pipeline makes it (subprocesses,
    real reports, the shipped policy library), on its own signing key, which the server trusts."""
    folder = tmp_path_factory.mktemp("ui-log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATE_", "GITHUB_", "CI_", "GITLAB_"))}
    for var in ("BUILD_URL", "GIT_COMMIT", "BUILD_USER_ID"):
        env.pop(var, None)
    env.update(XDG_STATE_HOME=str(folder / "state"), XDG_CACHE_HOME=str(folder / "cache"))
    gate_cli(env, "keys", "generate", "--out", folder / "keys")
    store = folder / "decisions.db"
    env.update(
        GATE_DECISION_STORE=str(store),
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
        env, "promote", "--decision", ids["payments_deny"], "--target", "127.0.0.1:9/shop/payments:1.0",
        "--gitops-repo", folder / "no-gitops", "--gitops-path", "apps/prod/kustomization.yaml", ok=(1,),
    )
    verify = json.loads(gate_cli(env, "decisions", "verify", "--format", "json").stdout)
    assert verify["ok"] and verify["head"]
    return Seeded(store, env, ids, outcomes, verify)


# --- the server --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running `gate serve --ui`."""

    url: str
    proc: subprocess.Popen[str]

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """One request outside the browser: (status, headers, body)."""
        req = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`gate serve --ui --bind 127.0.0.1:PORT` as a subprocess on the seeded log; stopped at the end."""
    errlog = tmp_path_factory.mktemp("ui-server") / "stderr.txt"
    with errlog.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gate", "serve", "--ui", "--bind", f"127.0.0.1:{free_port()}"],
            env=seeded.env, stdout=subprocess.DEVNULL, stderr=err, text=True,
        )
    try:
        url = None
        deadline = time.monotonic() + WAIT
        while url is None and time.monotonic() < deadline:
            assert proc.poll() is None, f"gate serve --ui exited {proc.returncode}: {errlog.read_text()}"
            found = re.search(r"serving on (http://\S+)", errlog.read_text())
            url = found.group(1).rstrip("/") if found else None
            time.sleep(0.05)
        assert url, f"gate serve --ui printed no 'serving on URL': {errlog.read_text()}"
        yield Server(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in errlog.read_text()


# --- the browser -------------------------------------------------------------------------------------


@dataclass
class Browser:
    """A headless Chromium session and the folder it downloads into."""

    driver: Any
    downloads: Path

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path


def chromium_or_fail() -> None:
    """Fail with what to do when Chromium or its driver is missing; skip only on GATE_SKIP_BROWSER=1."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing and os.environ.get("GATE_SKIP_BROWSER") == "1":
        pytest.skip(f"GATE_SKIP_BROWSER=1 and {', '.join(missing)} missing")
    if os.environ.get("GATE_SKIP_BROWSER") == "1":
        pytest.skip("GATE_SKIP_BROWSER=1")
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: `bash .ci/system-packages` installs Debian's chromium and "
            "chromium-driver (or set GATE_SKIP_BROWSER=1 to skip the browser tests on purpose)", pytrace=False,
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
    assert driver.execute_script("return typeof window.__xss") == "undefined", driver.execute_script(
        "return window.__xss"
    )
    problems = [
        e["message"] for e in driver.get_log("browser")
        if (e["level"] == "SEVERE" or "Content Security" in e["message"]) and "/favicon.ico " not in e["message"]
    ]
    assert not problems, problems
    assert not driver.find_elements("css selector", "script"), "a <script> element is in the page"
    assert not driver.find_elements("css selector", "a[href^='javascript:' i]"), "a javascript: link is in the page"
    for attr in ("onerror", "onload", "onmouseover", "onclick"):
        assert not driver.find_elements("css selector", f"[{attr}]"), f"an element carries {attr}="


def document_headers(browser: Browser, url: str) -> dict[str, str]:
    """The response headers of the last document the browser loaded from ``url`` (its network log)."""
    headers: dict[str, str] = {}
    for entry in browser.driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.responseReceived":
            response = message["params"]["response"]
            if message["params"].get("type") == "Document" and response["url"].startswith(url):
                headers = {k.lower(): v for k, v in response["headers"].items()}
    return headers


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

    return wait_for(done, f"a {suffix} download in {browser.downloads}")


# --- the seeded log, as the CLI sees it ---------------------------------------------------------------


def test_the_seeded_log_holds_what_the_pages_show(seeded: Seeded) -> None:
    listed = json.loads(gate_cli(seeded.env, "decisions", "list", "--format", "json").stdout)["decisions"]
    assert [d["decision_id"] for d in listed] == list(reversed(seeded.ids.values()))
    waived = next(d for d in listed if d["decision_id"] == seeded.ids["payments_waived"])
    assert [w["id"] for w in waived["waivers"]] == [WAIVER_ID]
    shown = json.loads(gate_cli(seeded.env, "decisions", "show", seeded.ids["payments_deny"], "--format", "json").stdout)
    assert any(XSS_PACKAGE in v["message"] for v in shown["violations"]), shown["violations"]
    assert shown["context"]["actor"] == XSS_ACTOR
    events = json.loads(gate_cli(seeded.env, "decisions", "events", "--format", "json").stdout)
    print(json.dumps(events)[:600])
