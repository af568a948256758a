"""Policy layers (gate.policy.sources): the shipped library inside the package, and bundles stacked on it.

Real bundles only: the shipped library as installed with gate, and small organization bundles written
here. The command line over the same layers is tests/cli/test_evaluate_layers.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import msgspec
import pytest

from gate.decisions.record import LayerInfo, PolicyInfo
from gate.errors import PolicyError
from gate.evaluation import load_policy
from gate.policy.bundle import load_bundle
from gate.policy.embedded import EmbeddedEngine
from gate.policy.sources import SHIPPED, load_layers, shipped_library
from gate.version import __version__
from tests.conftest import ROOT

REVISION = f"gate-policies-{__version__}"

ORG_RULE = """package gate.promotion.org_images

import rego.v1

# METADATA
# title: Release registry only
# custom:
#   rule_id: org.images.registry
#   severity: high
deny contains result if {
\tstartswith(input.artifact.image, "registry.example.com/shop/")
\tresult := {"msg": "shop images come from the release registry", "rule": "org.images.registry", "severity": "high", "finding_ids": []}
}
"""


def org_bundle(
    tmp_path: Path, *, files: dict[str, str] | None = None, data: dict[str, object] | None = None,
    revision: str | None = "org-7", name: str = "org",
) -> Path:
    """An organization's bundle: its own rules (``files``: path -> text) and data under gate/config."""
    root = tmp_path / name
    root.mkdir()
    for rel, text in (files if files is not None else {"gate/promotion/org_images.rego": ORG_RULE}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    if data is not None:
        (root / "gate" / "config").mkdir(parents=True, exist_ok=True)
        (root / "gate" / "config" / "data.json").write_text(json.dumps(data))
    if revision is not None:
        (root / ".manifest").write_text(json.dumps({"revision": revision, "roots": ["gate"]}))
    return root


def test_the_shipped_library_is_in_the_package_and_is_the_default() -> None:
    library = shipped_library()
    assert library.is_dir() and (library / ".manifest").is_file()
    own = load_bundle(library)
    # installed (CI: a wheel) or editable (a link to policies/): the same files as the repository's library
    assert own.digest == load_bundle(ROOT / "policies").digest
    for bundle in (load_layers([]), load_layers([SHIPPED])):
        assert bundle.digest == own.digest and bundle.sources.keys() == own.sources.keys()  # keys unchanged
        assert bundle.revision == REVISION
        assert bundle.layers == (LayerInfo(SHIPPED, own.digest, REVISION),)


def test_a_single_directory_keeps_its_own_digest_and_paths(tmp_path: Path) -> None:
    copy = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", copy)
    bundle = load_layers([str(copy)])
    assert bundle.digest == load_bundle(copy).digest  # records decided before layers stay comparable
    assert bundle.layers == (LayerInfo(str(copy), bundle.digest, REVISION),)
    assert "gate/promotion/coverage.rego" in bundle.sources
    assert bundle.location("gate/promotion/coverage.rego") == copy / "gate/promotion/coverage.rego"


def test_layers_merge_data_in_order_and_add_packages(tmp_path: Path) -> None:
    org = org_bundle(tmp_path, data={"thresholds": {"prod": {"min_line_coverage": 0.95}}, "team": "shop"})
    library, own = load_bundle(shipped_library()), load_bundle(org)
    bundle = load_layers([SHIPPED, str(org)])
    prod = bundle.data["gate"]["config"]["thresholds"]["prod"]
    assert prod["min_line_coverage"] == 0.95  # the org's threshold beats the library's ...
    assert prod["required_scanners"] == ["trivy", "coverage"]  # ... key by key: the rest stays the library's
    assert bundle.data["gate"]["config"]["team"] == "shop"
    assert bundle.data["gate"]["config"]["thresholds"]["dev"]["min_line_coverage"] == 0.6
    # the other order: the library (on top) wins
    assert load_layers([str(org), SHIPPED]).data["gate"]["config"]["thresholds"]["prod"]["min_line_coverage"] == 0.8
    # every layer's sources, under distinct keys, each found where it was read
    assert len(bundle.sources) == len(library.sources) + len(own.sources)
    org_key = next(k for k, text in bundle.sources.items() if text == ORG_RULE)
    assert bundle.location(org_key) == org / "gate/promotion/org_images.rego"
    assert bundle.location("library/gate/promotion/coverage.rego") == shipped_library() / "gate/promotion/coverage.rego"
    # digest over the layers' digests in order; revision: the top layer's; every layer named
    expected = hashlib.sha256(f"{library.digest}\n{own.digest}\n".encode()).hexdigest()
    assert bundle.digest == f"sha256:{expected}" != load_layers([str(org), SHIPPED]).digest
    assert bundle.revision == "org-7"
    assert bundle.layers == (LayerInfo(SHIPPED, library.digest, REVISION), LayerInfo(str(org), own.digest, "org-7"))
    assert bundle.name == f"{SHIPPED}, {org}"


def test_the_layered_bundle_compiles_and_the_org_rule_is_known(tmp_path: Path) -> None:
    org = org_bundle(tmp_path)
    loaded = load_policy([SHIPPED, str(org)], [], EmbeddedEngine())
    assert ("gate.promotion.org_images", "org.images.registry") in loaded.metadata
    assert ("gate.promotion.coverage", "coverage.line_rate") in loaded.metadata


@pytest.mark.parametrize(
    "rel", ["gate/promotion/coverage.rego", "gate/promotion/coverage_test.rego"], ids=["rules", "tests"]
)
def test_a_package_defined_in_two_layers_is_an_error_naming_both(tmp_path: Path, rel: str) -> None:
    package = "gate.promotion.coverage" if not rel.endswith("_test.rego") else "gate.promotion.coverage_test"
    org = org_bundle(tmp_path, files={rel: f"package {package}\n\nimport rego.v1\n\nx := 1\n"})
    with pytest.raises(PolicyError) as raised:
        load_layers([SHIPPED, str(org)])
    message = raised.value.diagnostics()
    assert f"package {package}" in message and SHIPPED in message and str(org) in message


def test_two_org_layers_may_not_share_a_package_either(tmp_path: Path) -> None:
    first, second = org_bundle(tmp_path, name="one"), org_bundle(tmp_path, name="two")
    with pytest.raises(PolicyError, match=r"policy layers .*one and .*two both define package gate.promotion.org_images"):
        load_layers([SHIPPED, str(first), str(second)])


def test_a_compile_error_names_the_layers_file(tmp_path: Path) -> None:
    org = org_bundle(tmp_path, files={"gate/promotion/broken.rego": "package gate.promotion.broken\n\ndeny contains x if {\n"})
    with pytest.raises(PolicyError, match=str(org / "gate/promotion/broken.rego")):
        load_policy([SHIPPED, str(org)], [], EmbeddedEngine())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("missing-bundle", "policy bundle missing-bundle: not a directory"),
        ("gate:libary", "policy bundle gate:libary: not a bundle gate knows"),
        ("https://example.com/bundle.tar.gz", "policy bundle https://example.com/bundle.tar.gz: not a bundle gate knows"),
        ("", "policy bundle '': empty"),
    ],
)
def test_a_spec_that_names_no_bundle_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PolicyError) as raised:
        load_layers([SHIPPED, spec])
    assert raised.value.diagnostics().startswith(expected)


def test_an_unreadable_layer_names_its_file(tmp_path: Path) -> None:
    org = org_bundle(tmp_path, data={"thresholds": {}})
    (org / "gate" / "config" / "data.json").write_text("{not json")
    with pytest.raises(PolicyError, match=str(org / "gate" / "config" / "data.json")):
        load_layers([SHIPPED, str(org)])


def test_layers_are_recorded_only_when_there_are_some() -> None:
    """Records from before layers (no ``layers``) encode, and so hash, exactly as they did."""
    old = PolicyInfo(digest="sha256:" + "0" * 64, engine="embedded", engine_version="regorus 0.13.0", revision="r", bundle="policies")
    assert b"layers" not in msgspec.json.encode(old)
    decoded = msgspec.json.decode(msgspec.json.encode(old), type=PolicyInfo)
    assert decoded == old and decoded.layers == ()
    layered = msgspec.structs.replace(old, layers=(LayerInfo("gate:library", old.digest, "r"), LayerInfo("org", old.digest)))
    encoded = msgspec.json.encode(layered)
    assert msgspec.json.decode(encoded, type=PolicyInfo) == layered
    assert json.loads(encoded)["layers"][1] == {"source": "org", "digest": old.digest}
