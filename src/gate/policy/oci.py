"""Policy bundles in OCI registries: pulled in OPA's or conftest's form, pushed in OPA's, cached by digest.

The two forms, as their projects write and read them:

- OPA: one layer ``application/vnd.oci.image.layer.v1.tar+gzip`` holding the bundle tarball (what
  ``opa build`` makes); OPA's OCI downloader takes that layer (open-policy-agent/opa
  ``v1/download/oci_download.go``), and OPA's docs push it with ``oras push REF --config
  config.json:application/vnd.oci.image.config.v1+json bundle.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip``
  (docs "Bundles", OCI registry section). gate pushes exactly that, so OPA can load what gate pushes.
- conftest: ``conftest push`` (open-policy-agent/conftest ``internal/commands/push.go``) writes one layer per
  file, ``application/vnd.cncf.openpolicyagent.policy.layer.v1+rego`` per ``.rego`` and
  ``application/vnd.cncf.openpolicyagent.data.layer.v1+json`` per data file, each named by its
  ``org.opencontainers.image.title`` annotation; its config is oras' ``application/vnd.unknown.config.v1+json``
  (``application/vnd.cncf.openpolicyagent.config.v1+json`` before 2022). Files land at their titles.

A pull is checked before anything is used: the manifest and every blob against their digests, sizes
against bounds, and the tarball's entries (regular files and folders only, relative paths without
``..``; OPA writes its entries as ``/data.json``, so one leading ``/`` means the bundle root). Anything
else (another media type, an index, a link) is refused with one line naming the reference.

Bundles are cached by manifest digest in ``cache_home()/bundles`` (``$GATE_CACHE_DIR``, else
``$XDG_CACHE_HOME/gate``), written to a temporary folder and renamed into place, so an entry that exists
is complete. A reference by digest found there needs no registry; a tag is always resolved against it.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gate.errors import PolicyError, RegistryError, UsageError
from gate.imageref import Reference, parse, split_registry
from gate.policy.bundle import bundle_files, load_bundle
from gate.policy.cache import cache_home
from gate.registry.client import (
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_MANIFEST,
    Repository,
    open_client,
    pull_scope,
    push_scope,
    sha256_digest,
)

SCHEME = "oci://"
#: OPA's form: the bundle tarball layer, and the config type OPA's docs push with it
OPA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OPA_CONFIG = "application/vnd.oci.image.config.v1+json"
#: conftest's form: one layer per policy file and per data file
CONFTEST_POLICY_LAYER = "application/vnd.cncf.openpolicyagent.policy.layer.v1+rego"
CONFTEST_DATA_LAYER = "application/vnd.cncf.openpolicyagent.data.layer.v1+json"
CONFIG_TYPES = frozenset({
    OPA_CONFIG,
    "application/vnd.unknown.config.v1+json",  # oras' default, conftest since 2022
    "application/vnd.cncf.openpolicyagent.config.v1+json",  # conftest before 2022
    "application/vnd.oci.empty.v1+json",  # oras 1.x without --config
})
TITLE = "org.opencontainers.image.title"
#: in a cache entry: the bundle digest of what was pulled
CONTENT_DIGEST = "content-digest"
#: bounds on what a pull reads and writes (a bundle is text: these are generous)
MAX_LAYER_BYTES = 64 << 20
MAX_LAYERS = 10_000
MAX_EXTRACTED_BYTES = 256 << 20
MAX_FILES = 10_000


@dataclass(frozen=True)
class FetchedBundle:
    """A pulled bundle: the folder holding its files, and the reference pinned to its manifest digest."""

    path: Path
    reference: str  # oci://REGISTRY/REPO@sha256:<manifest digest>
    #: the bundle's digest (gate.policy.bundle) when it was pulled: a cache entry edited since loads with
    #: another digest, which the loader refuses
    content_digest: str = ""


def parse_reference(ref: str, what: str = "policy bundle") -> Reference:
    """``oci://REGISTRY/REPO:TAG`` or ``oci://REGISTRY/REPO@sha256:D`` (the grammar is gate.imageref's)."""
    if not ref.startswith(SCHEME):
        raise UsageError(f"{what} {ref!r}: an OCI bundle reference starts with {SCHEME}")
    rest = ref[len(SCHEME) :]
    parsed = parse(rest, what)  # refuses credentials without echoing them
    if split_registry(rest)[0] is None:
        raise UsageError(f"{what} {ref}: name the registry ({SCHEME}REGISTRY/REPO:TAG)")
    if parsed.tag is None and parsed.digest is None:
        raise UsageError(f"{what} {ref}: give a tag or a digest ({SCHEME}REGISTRY/REPO:TAG or @sha256:...)")
    return parsed


def pinned(ref: Reference, digest: str) -> str:
    """``oci://REGISTRY/REPO@sha256:D``: what a decision records."""
    return SCHEME + str(ref.with_digest(digest))


def bundle_cache() -> Path:
    """Where pulled bundles are kept, one folder per manifest digest."""
    return cache_home() / "bundles"


def _entry(digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return bundle_cache() / algorithm / hexdigest


# --- pull --------------------------------------------------------------------------------------------


def fetch_bundle(ref: str) -> FetchedBundle:
    """The bundle ``ref`` names, from the cache or pulled into it; a ``RegistryError``/``PolicyError`` naming
    ``ref`` when it cannot be had or is not a bundle gate can trust."""
    parsed = parse_reference(ref)
    if parsed.digest is not None and (_entry(parsed.digest) / "bundle").is_dir():
        return _cached(_entry(parsed.digest), pinned(parsed, parsed.digest))
    try:
        with open_client(parsed.registry, [pull_scope(parsed)]) as client:
            repo = Repository(parsed, client)
            digest = parsed.digest or repo.manifest_digest(parsed.reference)
            if digest is None:
                raise RegistryError(f"{repo.label}: manifest {parsed.reference} not found")
            entry = _entry(digest)
            if not (entry / "bundle").is_dir():
                _pull_into(repo, digest, entry)
    except (RegistryError, PolicyError) as e:
        raise type(e)(f"policy bundle {ref}: {e}") from None
    return _cached(entry, pinned(parsed, digest))


def _cached(entry: Path, reference: str) -> FetchedBundle:
    try:
        content_digest = (entry / CONTENT_DIGEST).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        content_digest = ""  # never matches: the loader refuses the entry, naming it
    return FetchedBundle(entry / "bundle", reference, content_digest)


def _pull_into(repo: Repository, digest: str, entry: Path) -> None:
    """Download, check and unpack the manifest ``digest`` into ``entry/bundle``, atomically."""
    data, media_type = repo.get_manifest(digest)  # size-bounded and checked against the digest
    if media_type in INDEX_TYPES or media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise PolicyError(f"manifest {digest} is {media_type}, not a policy bundle (an image manifest)")
    manifest = json.loads(data)
    layers = _layers(manifest, digest)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".pull-", dir=entry.parent))
    except OSError as e:
        raise PolicyError(f"bundle cache {entry.parent}: cannot be written ({e.strerror})") from None
    try:
        files = _Files(work / "bundle")
        # each blob is read up to the size its descriptor declares (already bounded), then checked by digest
        if layers[0]["mediaType"] == OPA_LAYER:
            files.untar(repo.get_blob(layers[0]["digest"], layers[0]["size"]), layers[0]["digest"])
        else:
            titles = [_title(layer) for layer in layers]  # every file name known before anything is fetched
            for title, layer in zip(titles, layers):
                files.add(title, repo.get_blob(layer["digest"], layer["size"]), layer["digest"])
        (work / "manifest.json").write_bytes(data)
        (work / CONTENT_DIGEST).write_text(load_bundle(work / "bundle").digest, encoding="ascii")
        try:
            work.rename(entry)
        except OSError:
            if not (entry / "bundle").is_dir():  # another pull of the same digest finished first: keep it
                raise
    except OSError as e:
        raise PolicyError(f"bundle cache {entry.parent}: cannot be written ({e.strerror})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _layers(manifest: Any, digest: str) -> list[dict[str, Any]]:
    """The manifest's layer descriptors, checked: one form only, known media types, sizes within bounds."""
    config = manifest.get("config") if isinstance(manifest, dict) else None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(config, dict) or not isinstance(layers, list) or not layers:
        raise PolicyError(f"manifest {digest} has no config or no layers: not a policy bundle")
    if config.get("mediaType") not in CONFIG_TYPES:
        raise PolicyError(f"manifest {digest}: unknown config media type {str(config.get('mediaType'))[:100]!r}")
    if len(layers) > MAX_LAYERS:
        raise PolicyError(f"manifest {digest} has more than {MAX_LAYERS} layers; refused")
    total = 0
    for layer in layers:
        if not isinstance(layer, dict):
            raise PolicyError(f"manifest {digest}: a layer is not a descriptor")
        media_type, size, blob = layer.get("mediaType"), layer.get("size"), layer.get("digest")
        if media_type not in (OPA_LAYER, CONFTEST_POLICY_LAYER, CONFTEST_DATA_LAYER):
            raise PolicyError(f"manifest {digest}: unknown layer media type {str(media_type)[:100]!r}; refused")
        if not isinstance(blob, str) or not blob.startswith("sha256:") or len(blob) != 71:
            raise PolicyError(f"manifest {digest}: a layer has no sha256 digest")
        if not isinstance(size, int) or size < 0 or size > MAX_LAYER_BYTES:
            raise PolicyError(f"manifest {digest}: layer {blob} size {size!r} is outside 0..{MAX_LAYER_BYTES}")
        total += size
    if total > MAX_EXTRACTED_BYTES:
        raise PolicyError(f"manifest {digest}: its layers hold more than {MAX_EXTRACTED_BYTES} bytes; refused")
    tarballs = [layer for layer in layers if layer["mediaType"] == OPA_LAYER]
    if tarballs and len(layers) != 1:
        raise PolicyError(
            f"manifest {digest}: an OPA bundle has exactly one {OPA_LAYER} layer and nothing else "
            f"({len(tarballs)} tarballs among {len(layers)} layers); refused"
        )
    return layers


def _title(layer: dict[str, Any]) -> str:
    """A conftest layer's file name (its title annotation); a data file must be one gate reads."""
    annotations = layer.get("annotations")
    title = annotations.get(TITLE) if isinstance(annotations, dict) else None
    if not isinstance(title, str) or not title:
        raise PolicyError(f"layer {layer['digest']} has no {TITLE} annotation: its file name is unknown")
    name = PurePosixPath(title).name
    if layer["mediaType"] == CONFTEST_POLICY_LAYER and not name.endswith(".rego"):
        raise PolicyError(f"policy layer {title[:200]!r} is not a .rego file")
    if layer["mediaType"] == CONFTEST_DATA_LAYER and name not in ("data.json", "data.yaml", "data.yml"):
        raise PolicyError(
            f"data layer {title[:200]!r}: gate reads a bundle's data from data.json or data.yaml files, "
            "as OPA bundles do (rename it before conftest push)"
        )
    return title


class _Files:
    """Writes a pulled bundle's files under ``root``, refusing anything that is not a plain relative file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.total = 0
        self.seen: set[str] = set()
        root.mkdir(parents=True)

    def _path(self, name: str, where: str, *, opa: bool = False) -> PurePosixPath:
        raw = name
        if opa:  # opa build writes "/data.json"; tar -C dir . writes "./data.json": both mean the bundle root
            name = name.removeprefix("/")
        parts = [p for p in PurePosixPath(name).parts if p != "."]
        if (
            not parts
            or name.startswith("/")
            or "\\" in name
            or "\0" in name
            or any(part == ".." for part in parts)
        ):
            raise PolicyError(f"{where}: entry {raw[:200]!r} is not a relative path inside the bundle; refused")
        return PurePosixPath(*parts)

    def add(self, name: str, content: bytes, where: str, *, opa: bool = False) -> None:
        rel = self._path(name, where, opa=opa)
        key = rel.as_posix()
        self.count += 1
        self.total += len(content)
        if self.count > MAX_FILES:
            raise PolicyError(f"{where}: more than {MAX_FILES} files; refused")
        if self.total > MAX_EXTRACTED_BYTES:
            raise PolicyError(f"{where}: more than {MAX_EXTRACTED_BYTES} bytes once unpacked; refused")
        if key in self.seen:
            raise PolicyError(f"{where}: {key} appears twice; refused")
        self.seen.add(key)
        target = self.root.joinpath(*rel.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("xb") as f:
                f.write(content)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise PolicyError(f"{where}: {key} clashes with another entry; refused") from None

    def untar(self, blob: bytes, where: str) -> None:
        """Unpack an OPA bundle tarball: regular files (and folders), nothing else."""
        entries = 0
        try:
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r|gz") as tar:
                for member in tar:
                    entries += 1
                    if entries > 2 * MAX_FILES:
                        raise PolicyError(f"{where}: more than {2 * MAX_FILES} tar entries; refused")
                    if member.isdir():  # folders are made as files need them; their names are still checked
                        if member.name.strip("./"):
                            self._path(member.name, where, opa=True)
                        continue
                    if not member.isreg():
                        kind = "link" if member.issym() or member.islnk() else "special file"
                        raise PolicyError(f"{where}: entry {member.name[:200]!r} is a {kind}; only files are allowed")
                    if member.size > MAX_EXTRACTED_BYTES - self.total:
                        raise PolicyError(f"{where}: more than {MAX_EXTRACTED_BYTES} bytes once unpacked; refused")
                    extracted = tar.extractfile(member)
                    content = extracted.read() if extracted is not None else b""
                    self.add(member.name, content, where, opa=True)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise PolicyError(f"{where}: not a gzip tarball ({type(e).__name__})") from None
        if not self.seen:
            raise PolicyError(f"{where}: the bundle tarball holds no files")


# --- push --------------------------------------------------------------------------------------------


def bundle_tarball(directory: Path) -> bytes:
    """The bundle's files as OPA reads a bundle tarball, byte for byte the same for the same files: sorted
    entries, mtime 0, owner 0:0 without names, mode 0644, gzip without name or time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, path in bundle_files(directory):
            content = path.read_bytes()
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def push_bundle(directory: Path, ref: str) -> str:
    """Push the bundle in ``directory`` to ``ref`` (``oci://REGISTRY/REPO:TAG``) in OPA's form; returns
    ``oci://REGISTRY/REPO@sha256:<manifest digest>``. The same files always give the same digest."""
    parsed = parse_reference(ref, "push target")
    if parsed.digest is not None or parsed.tag is None:
        raise UsageError(f"push target {ref}: give {SCHEME}REGISTRY/REPO:TAG (a tag, no digest)")
    bundle = load_bundle(directory)  # a push of something gate cannot load is refused before any upload
    try:
        tarball = bundle_tarball(bundle.root)
    except OSError as e:
        raise PolicyError(f"policy bundle {directory}: cannot read ({e.strerror})") from None
    config = b"{}"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OPA_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": OPA_LAYER,
                    "digest": sha256_digest(tarball),
                    "size": len(tarball),
                    "annotations": {TITLE: "bundle.tar.gz"},
                }
            ],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    digest = sha256_digest(manifest)
    try:
        with open_client(parsed.registry, [push_scope(parsed)]) as client:
            repo = Repository(parsed, client)
            repo.put_blob(config)
            repo.put_blob(tarball)
            repo.put_manifest(parsed.tag, manifest, OCI_MANIFEST, digest)
    except RegistryError as e:
        raise RegistryError(f"policy bundle push to {ref}: {e}") from None
    return pinned(parsed, digest)


__all__ = [
    "CONFTEST_DATA_LAYER",
    "CONFTEST_POLICY_LAYER",
    "FetchedBundle",
    "OPA_CONFIG",
    "OPA_LAYER",
    "SCHEME",
    "bundle_cache",
    "bundle_tarball",
    "fetch_bundle",
    "parse_reference",
    "pinned",
    "push_bundle",
]
