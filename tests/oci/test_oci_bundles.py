"""gate.policy.oci against the real ``docker-registry``: push and pull in OPA's form, conftest's form, the
cache by digest, and everything a pull must refuse (lying digests, escaping paths, links, unknown types).

Hostile artifacts are built here through the distribution API with the test-side client
(``Registry.client``), independent of gate's own client.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from gate.errors import GateError, PolicyError, RegistryError, UsageError
from gate.policy import oci
from gate.policy.bundle import load_bundle
from tests.promote.servers import Registry, new_repo, start_registry, stop_registry

pytestmark = pytest.mark.server

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
RULE = """package gate.promotion.org_images

import rego.v1

deny contains result if {
\tstartswith(input.artifact.image, "registry.example.com/shop/")
\tresult := {"msg": "org rule", "rule": "org.images.registry", "severity": "high", "finding_ids": []}
}
"""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_bundle(root: Path, marker: str = "") -> Path:
    """A small bundle: a rule, nested data, a .manifest, and files that are not part of the bundle."""
    marker = marker or uuid.uuid4().hex
    files = {
        "gate/promotion/org_images.rego": RULE,
        "gate/config/data.json": json.dumps({"thresholds": {"prod": {"min_line_coverage": 0.9}}, "marker": marker}),
        "data.yaml": "org:\n  name: shop\n",
        ".manifest": json.dumps({"revision": f"org-{marker[:8]}", "roots": ["gate", "org"]}),
        "README.md": "not part of the bundle\n",
        ".git/config": "not part of the bundle either\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- the test side of the distribution API ----------------------------------------------------------


def put_blob(reg: Registry, repo: str, data: bytes) -> str:
    digest = sha256(data)
    with reg.client() as client:
        r = client.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        url = client.base_url.join(r.headers["Location"]).copy_merge_params({"digest": digest})  # keeps _state
        r = client.put(url, content=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
    return digest


def put_manifest(reg: Registry, repo: str, tag: str, manifest: dict[str, object], media_type: str = OCI_MANIFEST) -> str:
    body = json.dumps(manifest).encode()
    with reg.client() as client:
        r = client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": media_type})
        assert r.status_code == 201, r.text
    return sha256(body)


def push_artifact(
    reg: Registry, repo: str, layers: list[tuple[str, bytes, dict[str, str]]],
    config_type: str = "application/vnd.oci.image.config.v1+json", tag: str = "1", *, media_type_field: bool = True,
) -> str:
    """Push an artifact made of ``layers`` (media type, bytes, annotations); returns its manifest digest."""
    config = b"{}"
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "config": {"mediaType": config_type, "digest": put_blob(reg, repo, config), "size": len(config)},
        "layers": [
            {"mediaType": mt, "digest": put_blob(reg, repo, data), "size": len(data), **({"annotations": ann} if ann else {})}
            for mt, data, ann in layers
        ],
    }
    if media_type_field:
        manifest = {"mediaType": OCI_MANIFEST, **manifest}
    return put_manifest(reg, repo, tag, manifest)


def tarball(entries: list[tarfile.TarInfo], contents: dict[str, bytes] | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in entries:
            body = (contents or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def regular(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def cache_is_empty(cache: Path) -> bool:
    """No bundle was kept (temporary folders of a refused pull are removed too)."""
    root = cache / "bundles"
    return not root.exists() or not any(p for p in root.rglob("*") if p.is_file())


# --- push and pull ---------------------------------------------------------------------------------


def test_push_then_pull_gives_the_bundle_back_in_opas_form(registry: Registry, tmp_path: Path) -> None:
    source = make_bundle(tmp_path / "org")
    repo = new_repo("policies")
    ref = f"oci://{registry.host}/{repo}:0.2.0"
    pinned = oci.push_bundle(source, ref)
    assert pinned.startswith(f"oci://{registry.host}/{repo}@sha256:")

    fetched = oci.fetch_bundle(ref)
    assert fetched.reference == pinned
    expected = {rel: (source / rel).read_bytes() for rel in ("gate/promotion/org_images.rego", "gate/config/data.json", "data.yaml", ".manifest")}
    assert files_of(fetched.path) == expected  # README.md and .git/ are not part of a bundle
    assert load_bundle(fetched.path).digest == load_bundle(source).digest

    # OPA's form: one tar+gzip layer, OPA's config type; entries owned by 0:0 at mtime 0, so the same
    # files always give the same digest
    with registry.client() as client:
        manifest = client.get(f"/v2/{repo}/manifests/0.2.0", headers={"Accept": OCI_MANIFEST}).json()
        assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
        [layer] = manifest["layers"]
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        blob = client.get(f"/v2/{repo}/blobs/{layer['digest']}", follow_redirects=True).content
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(expected)
    assert all(m.isreg() and m.mtime == 0 and m.uid == m.gid == 0 and m.uname == m.gname == "" for m in members)
    assert oci.push_bundle(source, f"oci://{registry.host}/{repo}:again") == pinned


def test_a_digest_found_in_the_cache_needs_no_registry_and_a_tag_always_asks(tmp_path: Path) -> None:
    own = start_registry(tmp_path / "registry")
    try:
        ref = f"oci://{own.host}/policies/gate:0.2.0"
        pinned = oci.push_bundle(make_bundle(tmp_path / "org"), ref)
        first = oci.fetch_bundle(ref)
    finally:
        stop_registry(own)
    again = oci.fetch_bundle(pinned)  # the registry is gone: the cache answers
    assert again == first and again.reference == pinned
    assert (again.path / "gate/promotion/org_images.rego").read_text() == RULE
    with pytest.raises(RegistryError) as err:  # a tag can move: it is never answered from the cache
        oci.fetch_bundle(ref)
    line = err.value.diagnostics()
    assert line.startswith(f"policy bundle {ref}: ") and "ConnectError" in line and "\n" not in line


def test_a_cached_bundle_edited_after_the_pull_is_refused_not_used(registry: Registry, tmp_path: Path) -> None:
    """The cache answers a digest without the registry, so the cache itself must not be the way around the
    bundle that was pulled: an entry whose files changed since loads with another digest and is refused."""
    from gate.policy.sources import load_layers

    pinned = oci.push_bundle(make_bundle(tmp_path / "org"), f"oci://{registry.host}/{new_repo('policies')}:1")
    fetched = oci.fetch_bundle(pinned)
    assert load_layers([pinned]).digest == fetched.content_digest
    (fetched.path / "gate/promotion/org_images.rego").write_text(RULE.replace("deny contains", "warn contains"))
    with pytest.raises(PolicyError, match="differs from what was pulled"):
        load_layers([pinned])


def test_a_tag_that_does_not_exist_is_an_error_naming_the_reference(registry: Registry) -> None:
    ref = f"oci://{registry.host}/{new_repo('policies')}:missing"
    with pytest.raises(RegistryError, match=f"policy bundle {ref}: .*manifest missing not found"):
        oci.fetch_bundle(ref)


def test_pull_and_push_with_htpasswd_credentials_from_the_docker_config(
    auth_registry: Registry, docker_config: Path, tmp_path: Path
) -> None:
    ref = f"oci://{auth_registry.host}/{new_repo('policies')}:1"
    with pytest.raises(RegistryError, match="401 UNAUTHORIZED"):  # anonymous
        oci.push_bundle(make_bundle(tmp_path / "org"), ref)
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {auth_registry.host: {"username": auth_registry.user, "password": auth_registry.password}}})
    )
    pinned = oci.push_bundle(tmp_path / "org", ref)
    assert oci.fetch_bundle(ref).reference == pinned


# --- what a pull refuses ----------------------------------------------------------------------------


def _tamper(reg: Registry, digest: str) -> None:
    """Change a stored blob's bytes (same length; a manifest stays JSON) behind the registry's back: it
    serves them unchecked."""
    path = reg.root / "data/docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:] / "data"
    data = bytearray(path.read_bytes())
    if b"bundle.tar.gz" in data:
        data = bytearray(data.replace(b"bundle.tar.gz", b"bundle.tar.gx"))
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("what", ["layer", "manifest"])
def test_content_that_does_not_match_its_digest_is_refused(
    what: str, registry: Registry, tmp_path: Path, bundle_cache: Path
) -> None:
    repo = new_repo("policies")
    ref = f"oci://{registry.host}/{repo}:1"
    pinned = oci.push_bundle(make_bundle(tmp_path / "org"), ref)
    manifest_digest = pinned.rsplit("@", 1)[1]
    with registry.client() as client:
        manifest = client.get(f"/v2/{repo}/manifests/1", headers={"Accept": OCI_MANIFEST}).json()
    _tamper(registry, manifest["layers"][0]["digest"] if what == "layer" else manifest_digest)
    with pytest.raises(RegistryError, match="does not match the requested") as err:
        oci.fetch_bundle(pinned)
    assert err.value.diagnostics().startswith(f"policy bundle {pinned}: ")
    assert cache_is_empty(bundle_cache)


HOSTILE = {
    "parent": ([regular("../evil.rego")], {"../evil.rego": b"package evil\n"}, "not a relative path inside the bundle"),
    "nested parent": ([regular("gate/../../evil.rego")], {"gate/../../evil.rego": b"package evil\n"}, "not a relative path"),
    "symlink": ([special("gate/x.rego", tarfile.SYMTYPE, "/etc/passwd")], {}, "is a link; only files are allowed"),
    "hard link": ([special("gate/x.rego", tarfile.LNKTYPE, "/etc/passwd")], {}, "is a link; only files are allowed"),
    "device": ([special("gate/dev", tarfile.CHRTYPE)], {}, "is a special file"),
    "fifo": ([special("gate/fifo", tarfile.FIFOTYPE)], {}, "is a special file"),
    "twice": ([regular("a.rego"), regular("./a.rego")], {"a.rego": b"package a\n", "./a.rego": b"package b\n"}, "appears twice"),
    "empty": ([], {}, "holds no files"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_tarball_with_escaping_paths_links_or_devices_is_refused(
    case: str, registry: Registry, bundle_cache: Path, tmp_path: Path
) -> None:
    entries, contents, message = HOSTILE[case]
    repo = new_repo("policies")
    ref = f"oci://{registry.host}/{repo}:1"
    push_artifact(registry, repo, [(oci.OPA_LAYER, tarball(entries, contents), {})])
    with pytest.raises(PolicyError, match=message) as err:
        oci.fetch_bundle(ref)
    assert err.value.diagnostics().startswith(f"policy bundle {ref}: ")
    assert cache_is_empty(bundle_cache)
    assert not (bundle_cache / "evil.rego").exists() and not (tmp_path / "evil.rego").exists()


def test_opa_build_style_entries_are_read_from_the_bundle_root(registry: Registry) -> None:
    """opa build writes "/data.json"; tar -C dir . writes "./gate/x.rego" and folder entries: both are the root."""
    folder = tarfile.TarInfo("./gate")
    folder.type = tarfile.DIRTYPE
    entries = [regular("/.manifest"), regular("/data.json"), folder, regular("./gate/x.rego")]
    contents = {"/.manifest": b'{"revision": "opa-1"}', "/data.json": b'{"k": 1}', "./gate/x.rego": RULE.encode()}
    repo = new_repo("policies")
    push_artifact(registry, repo, [(oci.OPA_LAYER, tarball(entries, contents), {"org.opencontainers.image.title": "bundle.tar.gz"})])
    bundle = load_bundle(oci.fetch_bundle(f"oci://{registry.host}/{repo}:1").path)
    assert bundle.revision == "opa-1" and bundle.data == {"k": 1} and list(bundle.sources) == ["gate/x.rego"]


@pytest.mark.parametrize(
    ("layer_type", "config_type", "message"),
    [
        ("application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.config.v1+json", "unknown layer media type"),
        ("application/vnd.example.policy", "application/vnd.oci.image.config.v1+json", "unknown layer media type"),
        (oci.OPA_LAYER, "application/vnd.example.config+json", "unknown config media type"),
    ],
)
def test_an_unknown_media_type_is_refused(
    layer_type: str, config_type: str, message: str, registry: Registry, bundle_cache: Path
) -> None:
    repo = new_repo("policies")
    body = tarball([regular("x.rego")], {"x.rego": RULE.encode()})
    push_artifact(registry, repo, [(layer_type, body, {})], config_type)
    with pytest.raises(PolicyError, match=message):
        oci.fetch_bundle(f"oci://{registry.host}/{repo}:1")
    assert cache_is_empty(bundle_cache)


def test_an_image_index_is_not_a_bundle(registry: Registry) -> None:
    from tests.promote.servers import push_index

    repo = new_repo("policies")
    push_index(registry, repo, "1")
    with pytest.raises(PolicyError, match="image.index.v1\\+json, not a policy bundle"):
        oci.fetch_bundle(f"oci://{registry.host}/{repo}:1")


@pytest.mark.parametrize(
    ("bound", "value", "message"),
    [
        ("MAX_LAYER_BYTES", 100, "size .* is outside 0..100"),
        ("MAX_EXTRACTED_BYTES", 2000, "more than 2000 bytes once unpacked"),
        ("MAX_FILES", 3, "more than 3 files"),
    ],
)
def test_sizes_and_file_counts_are_bounded(
    bound: str, value: int, message: str, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"gate/f{i}.rego" for i in range(5)]
    body = tarball([regular(n) for n in names], {n: b"package f\n" + b"#" * 1000 for n in names})
    assert len(body) < 2000  # compresses well: only unpacking finds the size
    repo = new_repo("policies")
    push_artifact(registry, repo, [(oci.OPA_LAYER, body, {})])
    monkeypatch.setattr(oci, bound, value)
    with pytest.raises(PolicyError, match=message):
        oci.fetch_bundle(f"oci://{registry.host}/{repo}:1")


def test_a_blob_longer_than_its_descriptor_says_is_not_read_past_it(registry: Registry, bundle_cache: Path) -> None:
    repo = new_repo("policies")
    body = tarball([regular("x.rego")], {"x.rego": RULE.encode()})
    config = b"{}"
    put_manifest(registry, repo, "1", {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": oci.OPA_CONFIG, "digest": put_blob(registry, repo, config), "size": len(config)},
        "layers": [{"mediaType": oci.OPA_LAYER, "digest": put_blob(registry, repo, body), "size": 10}],
    })
    with pytest.raises(RegistryError, match="is larger than 10 bytes; refusing"):
        oci.fetch_bundle(f"oci://{registry.host}/{repo}:1")
    assert cache_is_empty(bundle_cache)


# --- conftest's form --------------------------------------------------------------------------------


def test_a_conftest_artifact_pulls_file_by_file(registry: Registry) -> None:
    """As ``conftest push`` writes it: oras' unknown config "{}", an OCI manifest without mediaType, one layer
    per file named by its title annotation."""
    repo = new_repo("policies")
    title = "org.opencontainers.image.title"
    data = json.dumps({"thresholds": {"prod": {"min_line_coverage": 0.95}}}).encode()
    digest = push_artifact(
        registry, repo,
        [
            (oci.CONFTEST_POLICY_LAYER, RULE.encode(), {title: "gate/promotion/org_images.rego"}),
            (oci.CONFTEST_DATA_LAYER, data, {title: "gate/config/data.json"}),
        ],
        "application/vnd.unknown.config.v1+json", media_type_field=False,
    )
    fetched = oci.fetch_bundle(f"oci://{registry.host}/{repo}:1")
    assert fetched.reference == f"oci://{registry.host}/{repo}@{digest}"
    bundle = load_bundle(fetched.path)
    assert bundle.sources == {"gate/promotion/org_images.rego": RULE}
    assert bundle.data == {"gate": {"config": {"thresholds": {"prod": {"min_line_coverage": 0.95}}}}}


@pytest.mark.parametrize(
    ("layer_type", "title", "message"),
    [
        (oci.CONFTEST_DATA_LAYER, "policy/exclusions.json", "gate reads a bundle's data from data.json"),
        (oci.CONFTEST_POLICY_LAYER, "../x.rego", "not a relative path inside the bundle"),
        (oci.CONFTEST_POLICY_LAYER, "/etc/x.rego", "not a relative path inside the bundle"),
        (oci.CONFTEST_POLICY_LAYER, "", "has no org.opencontainers.image.title annotation"),
    ],
)
def test_a_conftest_layer_gate_cannot_place_is_refused(
    layer_type: str, title: str, message: str, registry: Registry, bundle_cache: Path
) -> None:
    repo = new_repo("policies")
    annotations = {"org.opencontainers.image.title": title} if title else {}
    push_artifact(registry, repo, [(layer_type, b"{}" if "data" in layer_type else RULE.encode(), annotations)],
                  "application/vnd.unknown.config.v1+json")
    with pytest.raises(PolicyError, match=message):
        oci.fetch_bundle(f"oci://{registry.host}/{repo}:1")
    assert cache_is_empty(bundle_cache)


# --- references ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("oci://policies:1", "name the registry"),
        ("oci://127.0.0.1:5000/policies", "give a tag or a digest"),
        ("127.0.0.1:5000/policies:1", "starts with oci://"),
        ("oci://user:hunter2-secret@127.0.0.1:5000/policies:1", "credentials"),
    ],
)
def test_references_are_oci_urls_with_a_registry_and_a_tag_or_digest(ref: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        oci.fetch_bundle(ref)
    assert "hunter2-secret" not in err.value.diagnostics()


def test_push_needs_a_tag_and_a_loadable_bundle(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="a tag, no digest"):
        oci.push_bundle(make_bundle(tmp_path / "org"), f"oci://{registry.host}/p@sha256:{'a' * 64}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError, match="no .rego files"):
        oci.push_bundle(tmp_path / "empty", f"oci://{registry.host}/{new_repo('policies')}:1")


def test_an_unreachable_registry_is_one_line_naming_the_reference() -> None:
    from tests.promote.servers import free_port

    ref = f"oci://127.0.0.1:{free_port()}/policies/gate:1"
    with pytest.raises(GateError) as err:
        oci.fetch_bundle(ref)
    line = err.value.diagnostics()
    assert line.startswith(f"policy bundle {ref}: ") and "ConnectError" in line and "\n" not in line
