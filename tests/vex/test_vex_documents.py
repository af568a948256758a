"""gate.vex: the specifications' own examples read into statements, and every way a document is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate import dsse
from gate.decisions.signing import key_id
from gate.vex import VexError, load_document, load_documents
from tests.conftest import DATA, DIGEST

VEX = DATA / "vex"
ARTIFACT = {"image": "registry.example.com/shop/cart", "digest": DIGEST, "tag": "1.4.2"}
NO_KEYS: Any = lambda: {}  # noqa: E731 - plain documents never ask for keys


def load(name: str | Path, artifact: dict[str, Any] | None = ARTIFACT, **kwargs: Any) -> Any:
    return load_document(VEX / name if isinstance(name, str) else name, artifact=artifact, trusted=kwargs.pop("trusted", NO_KEYS), **kwargs)


def write(tmp_path: Path, document: Any, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


# --- the specifications' examples -------------------------------------------------------------------


def test_openvex_spec_minimal_document() -> None:
    doc = load("openvex-spec-minimal.json")
    assert doc.format == "openvex" and doc.signed_by is None
    [statement] = doc.statements
    assert statement["vulnerability"] == "CVE-2023-12345" and statement["status"] == "fixed"
    # the statement has no timestamp: it inherits the document's (-06:00 read as UTC)
    assert statement["timestamp"] == "2023-01-09T00:02:03.647787Z"
    assert statement["products"] == [
        {"purl": "pkg:apk/wolfi/git@2.39.0-r1?arch=armv7"}, {"purl": "pkg:apk/wolfi/git@2.39.0-r1?arch=x86_64"},
    ]
    assert statement["id"] == f"{doc.digest[7:19]}/#0" and statement["statement"] == "#0"
    assert statement["author"] == "Wolfi J Inkinson"


def test_vexctl_examples() -> None:
    [demo] = load("openvex-vexctl-demo.json").statements
    assert demo["status"] == "fixed" and demo["timestamp"] == "2023-12-05T03:55:19.945015Z"
    [history, inherited] = load("openvex-vexctl-sample-history.json").statements
    assert history["products"] == [{"image_digest": "sha256:13d22ec63300e16014d4a42aed735207a8b33c223cff19627dd3042e5a10a3a0"}]
    assert history["aliases"] == ["SNYK-DEBIAN12-LIBDE265-3361563"]
    assert history["justification"] == "component_not_present"
    assert inherited["timestamp"] == "2023-08-17T01:55:22.076684Z"  # the document's
    [template] = load("openvex-vexctl-oci-template.json").statements
    assert template["products"] == [{"image": "docker.io/library/vexctl"}]
    [no_doc_time] = load("openvex-vexctl-v020-no-doc-timestamp.json").statements
    assert no_doc_time["status"] == "under_investigation"


def test_vexctl_v001_document_is_refused() -> None:
    with pytest.raises(VexError, match=r"@context is 'https://openvex.dev/ns': gate reads OpenVEX v0.2.0"):
        load("openvex-vexctl-v001-images.json")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("cdx-cisa-case1-not_affected.json", "not_affected"),
        ("cdx-cisa-case1-fixed.json", "fixed"),
        ("cdx-cisa-case1-affected.json", "affected"),
        ("cdx-cisa-case1-under_investigation.json", "under_investigation"),
    ],
)
def test_cyclonedx_cisa_states_map_to_vex_statuses(name: str, status: str) -> None:
    doc = load(name)
    [statement] = doc.statements
    assert doc.format == "cyclonedx" and statement["status"] == status
    assert statement["vulnerability"] == "CVE-2021-44228"
    # the product is a bom-ref to a component without a purl: kept, and it matches nothing
    assert all("unmatched" in p for p in statement["products"])


def test_cyclonedx_not_affected_reason() -> None:
    [statement] = load("cdx-cisa-case1-not_affected.json").statements
    assert statement["justification"] == "code_not_present"
    assert statement["impact_statement"].startswith("This version of Product ABC is not affected")


def test_cyclonedx_bom_link_to_a_purl() -> None:
    [statement] = load("cdx-bomlink-jackson.json").statements
    assert statement["products"] == [{"purl": "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar"}]
    assert statement["aliases"] == ["SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302"]


def test_cyclonedx_version_ranges_match_nothing() -> None:
    statements = load("cdx-cisa-case6-versions.json").statements
    assert [s["status"] for s in statements] == ["affected", "not_affected"]
    assert all(p == {"unmatched": "product-ABC"} for s in statements for p in s["products"])


def test_cyclonedx_without_affects_is_refused() -> None:
    with pytest.raises(VexError, match=r"vulnerabilities\[0\] names no product"):
        load("cdx-usecase7-no-affects.json")


def test_cyclonedx_image_subject_makes_packages_subcomponents() -> None:
    [statement] = load("authored-spring4shell-not_affected.cdx.json").statements
    assert statement["products"] == [
        {"image_digest": DIGEST, "subcomponents": ["pkg:maven/org.springframework/spring-beans@5.3.15"]}
    ]
    assert statement["id"].endswith("/vex-spring4shell") and statement["author"] == "secops@example.com"


# --- products: other spellings of the same image -------------------------------------------------------


def statement_with(product_id: str) -> dict[str, Any]:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "a", "timestamp": "2027-01-01T00:00:00Z",
        "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-1"}, "products": [{"@id": product_id}], "status": "fixed"}],
    }


@pytest.mark.parametrize(
    ("product", "artifact_image", "normalized"),
    [
        (f"pkg:oci/cart@{DIGEST.replace(':', '%3A')}?repository_url=registry.example.com/shop/cart", "x", {"image_digest": DIGEST}),
        (f"registry.example.com/shop/cart:1.4.2@{DIGEST}", "x", {"image_digest": DIGEST}),
        (DIGEST, "x", {"image_digest": DIGEST}),
        ("docker.io/library/nginx", "nginx", {"image": "nginx"}),  # spelled as the artifact spells it
        ("index.docker.io/library/nginx", "docker.io/library/nginx", {"image": "docker.io/library/nginx"}),
        ("registry.k8s.io/kube-apiserver:v1.26.0", "x", {"image": "registry.k8s.io/kube-apiserver", "tag": "v1.26.0"}),
        ("pkg:oci/kube-apiserver?repository_url=registry.k8s.io&tag=v1.26.0", "x",
         {"image": "registry.k8s.io/kube-apiserver", "tag": "v1.26.0"}),
        ("nginx", "nginx", {"unmatched": "nginx"}),  # no registry host: a name, not an image
        ("https://example.com/product", "x", {"unmatched": "https://example.com/product"}),
        ("pkg:npm/lodash@4.17.20", "x", {"purl": "pkg:npm/lodash@4.17.20"}),
    ],
)
def test_product_spellings(tmp_path: Path, product: str, artifact_image: str, normalized: dict[str, str]) -> None:
    doc = load(write(tmp_path, statement_with(product)), {"image": artifact_image, "digest": DIGEST})
    assert doc.statements[0]["products"] == [normalized]


# --- malformed documents ------------------------------------------------------------------------------


def good() -> dict[str, Any]:
    return json.loads((VEX / "authored-spring4shell-not_affected.openvex.json").read_text())


def mutated(change: Any) -> dict[str, Any]:
    document = good()
    change(document)
    return document


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("{", "is not JSON"),
        ("", "is empty"),
        ("[" * 5000 + "]" * 5000, "nested deeper than"),
        (json.dumps({"hello": "world"}), "is not a VEX document gate reads"),
        (mutated(lambda d: d.update({"@context": "https://openvex.dev/ns/v0.3.0"})), "gate reads OpenVEX v0.2.0"),
        (mutated(lambda d: d.update({"statements": []})), "statements must be a non-empty list"),
        (mutated(lambda d: d["statements"][0].pop("vulnerability")), "vulnerability must be an object"),
        (mutated(lambda d: d["statements"][0].update({"vulnerability": "CVE-2022-22965"})), "vulnerability must be an object"),
        (mutated(lambda d: d["statements"][0].pop("products")), "names no product"),
        (mutated(lambda d: d["statements"][0].update({"products": [{}]})), "has no @id, identifiers or hashes"),
        (mutated(lambda d: d["statements"][0].update({"status": "not_affcted"})), "is not a VEX status"),
        (mutated(lambda d: d["statements"][0].update({"justification": "because"})), "is not a VEX justification"),
        (mutated(lambda d: [d["statements"][0].pop(k) for k in ("justification", "impact_statement")]),
         "not_affected needs a justification or an impact_statement"),
        (mutated(lambda d: d.update({"timestamp": "2027-01-10T09:00:00"})), "has no time zone"),
        (mutated(lambda d: d.pop("timestamp")), "has no timestamp, and neither has the document"),
        (mutated(lambda d: d["statements"][0]["products"][0].update({"@id": "pkg:npm"})), "is not a package URL"),
    ],
)
def test_malformed_documents_are_refused(tmp_path: Path, document: Any, problem: str) -> None:
    with pytest.raises(VexError, match="VEX .*doc.json: .*" + problem.replace("(", r"\(")):
        load(write(tmp_path, document))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(VexError, match="no such file"):
        load(tmp_path / "absent.json")
    with pytest.raises(VexError, match="is a folder"):
        load(tmp_path)


def test_oversized_document_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gate.vex.documents.MAX_VEX_BYTES", 1024)
    with pytest.raises(VexError, match="larger than"):
        load(write(tmp_path, " " * 2000 + "{}"))


def test_a_file_given_twice_is_read_once(tmp_path: Path) -> None:
    path = VEX / "openvex-spec-minimal.json"
    copy = write(tmp_path, path.read_text())
    documents = load_documents([str(path), str(copy)], artifact=ARTIFACT)
    assert len(documents) == 1


# --- signed documents (DSSE envelopes) ------------------------------------------------------------------


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def envelope(key: Ed25519PrivateKey, predicate: Any, subjects: list[str], predicate_type: str = "https://openvex.dev/ns/v0.2.0") -> dict[str, Any]:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.example.com/shop/cart", "digest": {"sha256": s.removeprefix("sha256:")}} for s in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return dsse.sign(json.dumps(statement).encode(), dsse.IN_TOTO, key_id(key.public_key()), key.sign)


def test_signed_document_by_a_trusted_key(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    trusted = {key_id(key.public_key()): key.public_key()}
    path = write(tmp_path, envelope(key, good(), [DIGEST]))
    doc = load(path, trusted=lambda: trusted, require_signed=True)
    assert doc.signed_by == key_id(key.public_key()) and doc.statements[0]["status"] == "not_affected"
    assert doc.digest.startswith("sha256:") and doc.statements[0]["document"] == doc.digest


def test_signed_statement_without_products_inherits_the_subjects(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    trusted = {key_id(key.public_key()): key.public_key()}
    document = mutated(lambda d: d["statements"][0].pop("products"))
    doc = load(write(tmp_path, envelope(key, document, [DIGEST])), trusted=lambda: trusted)
    assert doc.statements[0]["products"] == [{"image_digest": DIGEST}]


def test_signed_cyclonedx(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    trusted = {key_id(key.public_key()): key.public_key()}
    cdx = json.loads((VEX / "authored-spring4shell-not_affected.cdx.json").read_text())
    doc = load(write(tmp_path, envelope(key, cdx, [DIGEST], "https://cyclonedx.org/vex")), trusted=lambda: trusted)
    assert doc.format == "cyclonedx"


def test_signed_by_a_foreign_key_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    trusted = {key_id(other.public_key()): other.public_key()}
    with pytest.raises(VexError, match="not a trusted key"):
        load(write(tmp_path, envelope(key, good(), [DIGEST])), trusted=lambda: trusted)


def test_signed_for_other_images_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    trusted = {key_id(key.public_key()): key.public_key()}
    with pytest.raises(VexError, match="signed for other images"):
        load(write(tmp_path, envelope(key, good(), ["sha256:" + "cd" * 32])), trusted=lambda: trusted)


def test_tampered_envelope_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    trusted = {key_id(key.public_key()): key.public_key()}
    signed = envelope(key, good(), [DIGEST])
    signed["payload"] = envelope(key, mutated(lambda d: d.update({"author": "mallory"})), [DIGEST])["payload"][:-8] + "AAAAAAA="
    with pytest.raises(VexError, match="DSSE envelope"):
        load(write(tmp_path, signed), trusted=lambda: trusted)


def test_signed_payload_of_another_predicate_type_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    trusted = {key_id(key.public_key()): key.public_key()}
    with pytest.raises(VexError, match="is not VEX"):
        load(write(tmp_path, envelope(key, good(), [DIGEST], "https://slsa.dev/verification_summary/v1")), trusted=lambda: trusted)


def test_unsigned_document_refused_when_signatures_are_required() -> None:
    with pytest.raises(VexError, match="is not signed, and vex_require_signed is set"):
        load("authored-spring4shell-not_affected.openvex.json", require_signed=True)
