"""gate.redact: the one scrubber for messages, events and log lines (issue 10, redaction)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import pytest

from gate.decisions.events import new_event
from gate.decisions.interface import StoreError
from gate.errors import GateError
from gate.redact import MASK, RedactingFilter, redact, redact_url, redact_value, url_secrets
from tests.conftest import ROOT, Run


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://x-access-token:ghp_abc123@github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git@host/r.git and https://u@h/x", "ssh://host/r.git and https://h/x"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("fatal: unable to access 'https://u:p@ss@host/x/': 403", "fatal: unable to access 'https://host/x/': 403"),
        ("postgresql://u:pw123@db/gate?password=zz&sslmode=require", "postgresql://db/gate?password=***&sslmode=require"),
        ("host=db user=u password='se cret' dbname=gate", "host=db user=u password=*** dbname=gate"),
        ("host=db password=hunter22", "host=db password=***"),
        ("https://h/x?token=abc&access_token=def&page=2", "https://h/x?token=***&access_token=***&page=2"),
        (
            "https://b.s3.amazonaws.com/o?X-Amz-Credential=AKIA1&X-Amz-Signature=abc123&X-Amz-Expires=60",
            "https://b.s3.amazonaws.com/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60",
        ),
        ("https://acct.blob.core.windows.net/c/b?sv=2020&sig=AbC%2Bd", "https://acct.blob.core.windows.net/c/b?sv=2020&sig=***"),
        ("Authorization: Bearer eyJhbGciOi.abc.def", "Authorization: Bearer ***"),
        ("sent Basic dXNlcjpwYXNz to the registry", "sent Basic *** to the registry"),
        ("db_password=hunter22 --token=xyz", "db_password=*** --token=***"),
        ("--target user:pw123@reg.example.com/app:1.0 refused", "--target reg.example.com/app:1.0 refused"),
        (
            "key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\nrest",
            "key: -----BEGIN EC PRIVATE KEY-----***-----END EC PRIVATE KEY-----\nrest",
        ),
        ("-----BEGIN PRIVATE KEY-----\nMC4CAQAw (cut off)", "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----"),
    ],
)
def test_credentials_are_removed_by_shape(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "registry.example.com/shop/cart:1.4.2@sha256:" + "ab" * 32,
        "image cart:1.0@sha256:abc is not pinned",
        "secops@example.com approved waiver W-1",
        "basic authentication failed for user ci",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
        "line coverage 90% is under the 95% required in prod",
        "Bearer token expired",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_known_secret_is_removed_as_written_decoded_and_encoded() -> None:
    """git prints a URL's password percent-decoded: the reconciler's mirror did not blank that form."""
    url = "https://ci:s3cr%40t-pw@git.example.com/gitops.git"
    secrets = url_secrets(url)
    assert secrets == ["s3cr%40t-pw"]
    said = "auth failed with s3cr@t-pw; retried s3cr%40t-pw; quoted s3cr%40t-pw"
    assert redact(said, secrets) == f"auth failed with {MASK}; retried {MASK}; quoted {MASK}"
    assert url_secrets("host=db password='a b c'") == ["a b c"]
    assert url_secrets("ssh://git@host/r.git") == []  # a user name is not a secret
    assert url_secrets("https://ghp_0123456789abcdef0123@github.com/o/r") == ["ghp_0123456789abcdef0123"]


def test_redact_url_keeps_the_location() -> None:
    assert redact_url("https://u:p@h:8443/r.git?private_token=abc") == "https://h:8443/r.git?private_token=***"


def test_redact_value_scrubs_structures_and_secret_named_keys() -> None:
    value = {
        "repo": "https://u:pw@h/r.git",
        "operations": ["push to https://u:pw@h/r.git", 3],
        "auth": {"password": "hunter22", "username": "ci", "token": "abc"},
        "reasons": ("Authorization: Bearer abcdef123",),
        "none": None,
    }
    assert redact_value(value) == {
        "repo": "https://h/r.git",
        "operations": ["push to https://h/r.git", 3],
        "auth": {"password": MASK, "username": "ci", "token": MASK},
        "reasons": ("Authorization: Bearer ***",),
        "none": None,
    }


def test_an_event_never_carries_a_credential() -> None:
    event = new_event(
        "promotion", "error", "prod",
        artifact={"image": "reg.example.com/app", "target": "ci:pw123@reg.example.com/app:1.0"},
        details={"repo": "https://ci:s3cr3t-pw@git.example.com/g.git", "reasons": ["fatal: password=s3cr3t-pw"]},
        context={"pipeline_url": "https://ci.example.com/p/1?token=abc123"},
    )
    text = repr(event)
    assert "s3cr3t" not in text and "pw123" not in text and "abc123" not in text
    assert event.details["repo"] == "https://git.example.com/g.git"


def test_the_ci_context_of_records_never_carries_a_credential() -> None:
    from gate.context import ci_context

    context = ci_context({"BUILD_URL": "https://ci:pw123456@jenkins.example.com/job/7/", "GIT_COMMIT": "abc"})
    assert context == {"pipeline_url": "https://jenkins.example.com/job/7/", "git_commit": "abc"}


def test_a_gate_error_never_shows_a_credential() -> None:
    error = StoreError("decision log postgresql://auditor:hunter22@db/gate: FATAL password=hunter22")
    assert "hunter22" not in error.diagnostics()
    assert GateError("fetching https://u:tok3n@h/x failed").diagnostics() == "fetching https://h/x failed"


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("gate.test_redact")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        log.info("pushing to %s", "https://ci:hunter22@h/r.git")
        try:
            raise RuntimeError("connect postgresql://u:hunter22@db/x failed")
        except RuntimeError:
            log.exception("store failed")
    finally:
        log.removeHandler(handler)
    assert records[0] == "pushing to https://h/r.git"
    assert "store failed" in records[1] and "RuntimeError: connect postgresql://db/x failed" in records[1]
    assert not any("hunter22" in r for r in records)


def test_redact_is_a_leaf_module() -> None:
    """Importable before anything else (errors.py and the CLI's logging use it): stdlib only."""
    import ast

    for name in ("redact.py", "rfc3339.py"):
        tree = ast.parse((ROOT / "src" / "gate" / name).read_text())
        imported = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert all(m.split(".")[0] in sys.stdlib_module_names or m == "__future__" for m in imported), (name, imported)


# --- through the CLI ------------------------------------------------------------------------------


def test_a_store_url_password_never_reaches_the_terminal(
    gate: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.promote.gitrepo import free_port

    monkeypatch.setenv("GATE_DECISION_STORE", f"postgresql://auditor:s3cr%40t-pw@127.0.0.1:{free_port()}/gatelog")
    for argv in (("decisions", "list"), ("-v", "decisions", "list"), ("-vv", "decisions", "verify")):
        run = gate(*argv)
        assert run.code == 2
        assert "127.0.0.1" in run.err, run.err
        for secret in ("s3cr", "auditor"):
            assert secret not in run.out and secret not in run.err, (argv, run.err)


def test_copies_of_the_scrubber_are_gone() -> None:
    """One home: no module but gate.redact masks secrets itself."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in (ROOT / "src", ROOT / "plugins")
        for path in folder.rglob("*.py")
        if path.name != "redact.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if '"***"' in line or "_USERINFO" in line or "def redact_url" in line
    ]
    assert offenders == []
