"""What a ``--policy`` value names, and how several of them layer into one bundle.

A spec is ``gate:library`` (the library installed with gate, ``SHIPPED``), ``oci://REGISTRY/REPO:TAG``
or ``oci://REGISTRY/REPO@sha256:D`` (pulled by gate.policy.oci), or a bundle directory. Nothing else
is a default: ``./policies`` in the current directory is used only when named.

Layers are given bottom first (``--policy gate:library --policy ./org``) and load as ONE ``Bundle``
that every engine already understands:

- its Rego sources are every layer's; a Rego ``package`` may be defined by one layer only (tests
  included): an organization adds packages (its own deny/warn rules), it never silently replaces
  or extends the library's. Unlike OPA, whose bundles must claim disjoint ``.manifest`` roots, gate
  does not use the roots to forbid layering: every layer may put data under ``gate`` (that is how
  an organization changes the library's thresholds), only packages must not clash;
- its data is the layers' data deep-merged in order, a later layer winning key by key (an org's
  ``gate.config`` thresholds beat the library's);
- its digest is a single layer's own (records stay comparable with unlayered ones), else sha256
  over the layers' digests in order; its revision is the top layer's; ``layers`` names each one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gate.decisions.record import LayerInfo
from gate.errors import PolicyError
from gate.policy.bundle import Bundle, load_bundle, merge_data

#: the spelling of the shipped library in ``--policy`` and gate.toml
SHIPPED = "gate:library"
OCI_SCHEME = "oci://"
#: what ``--policy`` takes, for messages and --help
SPEC_FORMS = f"{SHIPPED}, a bundle directory or oci://REGISTRY/REPO:TAG"

_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([\w.]+)", re.MULTILINE)


def shipped_library() -> Path:
    """The policy library installed with gate (``gate/library`` in the package, editable or from a wheel)."""
    from importlib.resources import files

    library = files("gate") / "library"
    if not isinstance(library, Path) or not library.is_dir():
        raise PolicyError(f"{SHIPPED}: the shipped policy library is missing from this installation of gate ({library})")
    return library


def load_layers(specs: Sequence[str]) -> Bundle:
    """The bundles ``specs`` name (bottom first; none means the shipped library), layered into one."""
    layers = [_load_one(spec) for spec in (list(specs) or [SHIPPED])]
    if len(layers) == 1:
        source, bundle = layers[0]
        return dataclasses.replace(bundle, layers=(LayerInfo(source, bundle.digest, bundle.revision),))
    _refuse_shared_packages(layers)
    sources: dict[str, str] = {}
    files: dict[str, Path] = {}
    data: dict[str, Any] = {}
    labels: set[str] = set()
    for source, bundle in layers:
        label = _unique(_label(source, bundle.root), labels)
        for rel, text in bundle.sources.items():
            key = f"{label}/{rel}"
            sources[key] = text
            files[key] = bundle.location(rel)
        data = merge_data(data, bundle.data)
    infos = tuple(LayerInfo(source, bundle.digest, bundle.revision) for source, bundle in layers)
    digest = "sha256:" + hashlib.sha256("".join(f"{layer.digest}\n" for layer in infos).encode()).hexdigest()
    top = layers[-1][1]
    roots = tuple(dict.fromkeys(root for _, bundle in layers for root in bundle.roots))
    return Bundle(top.root, sources, data, digest, top.revision, roots, layers=infos, files=files)


def _load_one(spec: str) -> tuple[str, Bundle]:
    """(the layer's recorded source, its bundle); an unusable spec is a ``PolicyError`` naming it."""
    if spec == SHIPPED:
        return spec, load_bundle(shipped_library())
    if spec.startswith(OCI_SCHEME):
        from gate.policy.oci import fetch_bundle  # the registry client only when a bundle comes from one

        fetched = fetch_bundle(spec)
        bundle = load_bundle(fetched.path)
        if bundle.digest != fetched.content_digest:
            raise PolicyError(
                f"policy bundle {spec}: the cached copy {fetched.path} differs from what was pulled ({fetched.reference}); "
                "remove its folder to pull it again"
            )
        return fetched.reference, bundle
    if spec.startswith("gate:") or "://" in spec:
        raise PolicyError(f"policy bundle {spec}: not a bundle gate knows (give {SPEC_FORMS})")
    if not spec.strip():
        raise PolicyError(f"policy bundle {spec!r}: empty (give {SPEC_FORMS})")
    if not Path(spec).exists():
        raise PolicyError(f"policy bundle {spec}: not a directory (no such file; give {SPEC_FORMS})")
    return spec, load_bundle(spec)


def _refuse_shared_packages(layers: list[tuple[str, Bundle]]) -> None:
    """A package defined by two layers would merge their rules silently (Rego joins a package's files):
    an error naming the package and both layers."""
    owner: dict[str, str] = {}
    for source, bundle in layers:
        mine: set[str] = set()
        for text in bundle.sources.values():
            match = _PACKAGE.search(text)
            if match is not None:
                mine.add(match.group(1).removeprefix("data."))
        for package in sorted(mine):
            if package in owner:
                raise PolicyError(
                    f"policy layers {owner[package]} and {source} both define package {package}: "
                    "a layer adds packages of its own and changes the library's through data only"
                )
            owner[package] = source


def _label(source: str, root: Path) -> str:
    """A short name for a layer's sources (their keys, and so OPA policy ids): URL-safe, readable."""
    if source == SHIPPED:
        return "library"
    if source.startswith(OCI_SCHEME):
        name = source.removeprefix(OCI_SCHEME).split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    else:
        name = root.resolve().name
    return re.sub(r"[^\w.-]", "_", name) or "layer"


def _unique(label: str, taken: set[str]) -> str:
    candidate, n = label, 1
    while candidate in taken:
        n += 1
        candidate = f"{label}-{n}"
    taken.add(candidate)
    return candidate


def as_specs(policy: str | Path | Sequence[str]) -> list[str]:
    """``policy`` as a list of specs: one directory or spec (``str``/``Path``), or the specs themselves."""
    if isinstance(policy, (str, Path)):
        return [str(policy)]
    return [str(spec) for spec in policy]
