"""Data files (``--data``, and a bundle's data.json/data.yaml) are read with bounds: size, nesting and
YAML alias expansion (issue 10, item 7). Each hostile file is generated here and refused at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.errors import PolicyError
from gate.policy.bundle import MAX_DATA_BYTES, MAX_DATA_NESTING, MAX_DATA_NODES, load_bundle, load_data_file


def alias_bomb(levels: int = 6) -> str:
    """The billion laughs in YAML: each level lists the previous one ten times (10**levels strings).
    Six levels are just past MAX_DATA_NODES, so a regressed fix costs a second here, not minutes; the CLI
    test sends the full nine levels to a bounded child process."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(alias_bomb())
    with pytest.raises(PolicyError) as e:
        load_data_file(path)
    assert str(e.value) == f"{path}: YAML expands to more than {MAX_DATA_NODES} values (aliases); refused"


def test_a_yaml_alias_that_refers_to_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("a: &x [1, *x]\n")
    with pytest.raises(PolicyError, match=r"loop.yaml: .*alias \*x refers to itself"):
        load_data_file(path)


def test_anchors_and_merge_keys_within_the_bounds_still_work(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text(
        "base: &base {approved_by: secops@example.com, expires: 2030-01-01T00:00:00Z}\n"
        "waivers:\n- {<<: *base, id: W-1, rule: CVE-1}\n- {<<: *base, id: W-2, rule: CVE-2}\n"
        "levels: &l [1, 2]\nagain: *l\n"
    )
    data = load_data_file(path)
    assert data["waivers"][1] == {
        "approved_by": "secops@example.com", "expires": "2030-01-01T00:00:00Z", "id": "W-2", "rule": "CVE-2"
    }
    assert data["again"] == [1, 2]


@pytest.mark.parametrize(("name", "opening", "closing"), [("deep.yaml", "[", "]"), ("deep.json", "[", "]"), ("deep2.yaml", "{a: ", "}")])
def test_data_nested_past_the_limit_is_refused(tmp_path: Path, name: str, opening: str, closing: str) -> None:
    path = tmp_path / name
    depth = MAX_DATA_NESTING + 1
    path.write_text(("{" + '"k": ' if name.endswith(".json") else "k: ") + opening * depth + closing * depth + ("}" if name.endswith(".json") else ""))
    with pytest.raises(PolicyError) as e:
        load_data_file(path)
    assert str(e.value) == f"{path}: data is nested deeper than {MAX_DATA_NESTING} levels; refused"
    ok = tmp_path / f"ok-{name}"
    depth = MAX_DATA_NESTING - 1
    ok.write_text(("{" + '"k": ' if name.endswith(".json") else "k: ") + opening * depth + closing * depth + ("}" if name.endswith(".json") else ""))
    assert "k" in load_data_file(ok)


def test_data_files_are_read_with_a_size_bound(tmp_path: Path) -> None:
    """`--data /dev/zero` used to read without end; a file past the bound is refused after reading just past it."""
    with pytest.raises(PolicyError) as e:
        load_data_file("/dev/zero")
    assert str(e.value) == f"data file /dev/zero: larger than {MAX_DATA_BYTES // (1 << 20)} MiB; refused"


def test_a_bundle_data_file_gets_the_same_bounds(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text("package gate.promotion.p\nimport rego.v1\ndeny contains 1 if { false }\n")
    (tmp_path / "gate").mkdir()
    (tmp_path / "gate" / "data.yaml").write_text(alias_bomb())
    with pytest.raises(PolicyError, match=r"gate/data.yaml: YAML expands to more than \d+ values"):
        load_bundle(tmp_path)


def test_an_error_without_a_message_still_says_what_failed(tmp_path: Path) -> None:
    """The bomb used to end, after 48 s and 3 GB, in "invalid YAML: " and nothing: a reason is never empty."""
    path = tmp_path / "tab.yaml"
    path.write_text("a:\n\t- b\n")
    with pytest.raises(PolicyError) as e:
        load_data_file(path)
    assert str(e.value).split("invalid YAML:", 1)[1].strip()
