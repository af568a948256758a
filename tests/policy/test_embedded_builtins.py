"""The embedded engine refuses a bundle that calls a builtin regorus lacks or only stubs (issue 10, item 5).

regorus' ``http.send`` is always undefined, and a missing builtin is an error only when an evaluation
reaches it; OPA refuses both when the module compiles. These load real bundles into the real engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.errors import PolicyError
from gate.policy.bundle import load_bundle
from gate.policy.embedded import EmbeddedEngine, engine_builtins
from tests.conftest import ROOT


def load(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    bundle = load_bundle(tmp_path)
    EmbeddedEngine().add_sources(bundle, bundle.policies(include_tests=True))


def test_the_engine_lists_its_builtins_and_http_send_is_only_a_stub_there() -> None:
    builtins = engine_builtins()
    assert {"count", "sprintf", "time.now_ns", "http.send"} <= builtins
    assert "crypto.x509.parse_certificates" not in builtins


@pytest.mark.parametrize(
    ("body", "function"),
    [
        ('r := http.send({"method": "get", "url": "https://x"}); r.status_code == 200', "http.send"),
        ('io.jwt.decode_verify(input.token, {"secret": "s"})[0]', "io.jwt.decode_verify"),
        ('net.lookup_ip_addr("example.com")', "net.lookup_ip_addr"),
        ("x := [y | some y in input.list; regex.globs_match(y, \"a*\")]; count(x) > 0", "regex.globs_match"),
    ],
)
def test_a_call_the_engine_cannot_evaluate_is_refused_at_load(tmp_path: Path, body: str, function: str) -> None:
    rego = f"package gate.promotion.x\n\nimport rego.v1\n\ndeny contains \"no\" if {{\n\t{body}\n}}\n"
    with pytest.raises(PolicyError) as e:
        load(tmp_path, {"x.rego": rego})
    assert f"{tmp_path / 'x.rego'}:6: calls {function}, which the embedded engine does not" in str(e.value)


def test_functions_of_the_bundle_in_every_spelling_are_not_builtins(tmp_path: Path) -> None:
    """Same package in another file, dotted function heads, data.* paths, imports with and without alias,
    a bracketed reference, and print (which regorus evaluates without listing it)."""
    load(
        tmp_path,
        {
            "lib/a.rego": "package lib.a\n\nimport rego.v1\n\nshout(s) := upper(s)\n\nnested.twice(s) := concat(\"\", [s, s])\n",
            "p/one.rego": "package gate.promotion.p\n\nimport rego.v1\n\nhelper(x) := x + 1\n",
            "p/two.rego": (
                "package gate.promotion.p\n\nimport rego.v1\n\nimport data.lib.a\nimport data.lib.a as b\n\n"
                "deny contains msg if {\n\tsome f in input.findings\n\thelper(1) == 2\n\ta.shout(f.rule) == b.shout(f.rule)\n"
                "\tdata.lib.a.nested.twice(f.rule) != \"\"\n\tdata.lib[\"a\"].shout(f.rule) != \"\"\n\tprint(f.rule)\n"
                "\tmsg := sprintf(\"%v\", [f.rule])\n}\n"
            ),
        },
    )


def test_the_shipped_library_and_its_tests_load(tmp_path: Path) -> None:
    bundle = load_bundle(ROOT / "policies")
    EmbeddedEngine().add_sources(bundle, bundle.policies(include_tests=True))


def test_a_passed_check_is_remembered_and_an_edited_bundle_is_checked_again(
    tmp_path: Path, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check's pass is kept in the cache folder (issue 11: the walk costs ~45 ms per evaluate); the
    same modules skip the walk, and an edit that adds an unsupported call is refused all the same."""
    import gate.policy.builtins

    walks: list[str] = []
    walk = gate.policy.builtins.unsupported_calls
    monkeypatch.setattr(gate.policy.builtins, "unsupported_calls", lambda ast, b: walks.append("walk") or walk(ast, b))
    ok = "package gate.promotion.x\n\nimport rego.v1\n\ndeny contains \"no\" if input.x == 1\n"
    bundle_dir = tmp_path / "bundle"
    load(bundle_dir, {"x.rego": ok})
    load(bundle_dir, {"x.rego": ok})
    assert walks == ["walk"]
    assert list((user_cache / "gate" / "policy").rglob("*"))  # the pass is on disk, for the next process
    with pytest.raises(PolicyError, match="calls http.send"):
        load(bundle_dir, {"x.rego": ok.replace("input.x == 1", 'http.send({"method": "get", "url": "u"})')})
    assert walks == ["walk", "walk"]


def test_the_remembered_pass_is_per_engine_version_and_module_path() -> None:
    from gate.policy.cache import cache_key

    sources = [("/b/x.rego", "package x")]
    key = cache_key("builtins", "regorus 0.13.0", sources)
    assert key == cache_key("builtins", "regorus 0.13.0", list(sources))
    assert key != cache_key("builtins", "regorus 0.14.0", sources)
    assert key != cache_key("builtins", "regorus 0.13.0", [("/c/x.rego", "package x")])
    assert key != cache_key("builtins", "regorus 0.13.0", [("/b/x.rego", "package y")])
    # the boundary between path and text is part of the key
    assert cache_key("k", "v", [("ab", "c")]) != cache_key("k", "v", [("a", "bc")])


def test_an_unwritable_cache_folder_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    load(tmp_path / "bundle", {"x.rego": "package gate.promotion.x\n\nimport rego.v1\n\ndeny contains \"no\" if false\n"})
    with pytest.raises(PolicyError, match="calls http.send"):
        load(tmp_path / "bad", {"x.rego": 'package gate.promotion.x\n\nimport rego.v1\n\ndeny contains "no" if http.send({})\n'})
