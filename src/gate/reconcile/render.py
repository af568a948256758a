"""Turn a path of a GitOps checkout into the Kubernetes objects it declares.

The three shapes GitOps tools accept: a kustomization (rendered by the real ``kubectl kustomize``),
a Helm chart (``helm template``, when helm is installed), or a folder of plain manifests read like
Argo CD's directory source. Whatever the shape, every object must be addressable (apiVersion, kind,
metadata.name) and nothing may be read from outside the checkout: a reconciler that follows a
symlink to ``/etc`` would apply what nobody reviewed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from gate.errors import ReconcileError
from gate.workloads import api_group

logger = logging.getLogger(__name__)

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART_FILE = "Chart.yaml"
MANIFEST_SUFFIXES = (".yaml", ".yml")
RENDER_TIMEOUT_S = 120.0

try:  # libyaml is several times faster on large manifest folders
    _Loader: type[yaml.SafeLoader | yaml.CSafeLoader] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


def render(
    root: Path,
    path: str,
    *,
    helm_values: Sequence[str] = (),
    release_name: str | None = None,
    timeout_s: float = RENDER_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """The objects ``root/path`` declares, in file order.

    ``path`` is a folder or a file inside the checkout ``root``. ``helm_values`` are values files
    (relative to ``root``) for a Helm chart; ``release_name`` defaults to the chart folder's name.
    Raises ReconcileError naming the file (and document) for anything unreadable or outside ``root``.
    """
    base = root.resolve()
    target = _inside(base, path, what="path")
    if not target.exists():
        raise ReconcileError(f"{path}: no such file or folder in the GitOps checkout")
    if target.is_file() and target.name not in KUSTOMIZATION_FILES:
        return list(_load_file(target, base))
    if target.is_file():  # a kustomization file stands for its folder, as kubectl kustomize reads it
        target = target.parent
    values = [_inside(base, v, what="Helm values file") for v in helm_values]
    return _render_dir(target, base, values, release_name, timeout_s)


def _inside(base: Path, relative: str, *, what: str) -> Path:
    """``base/relative`` with symlinks resolved, refused if it leaves ``base``."""
    resolved = (base / relative).resolve()
    if not resolved.is_relative_to(base):
        raise ReconcileError(f"{relative}: {what} leaves the GitOps checkout (.. or a symlink pointing outside)")
    return resolved


def _render_dir(
    folder: Path, base: Path, values: list[Path], release_name: str | None, timeout_s: float
) -> list[dict[str, Any]]:
    """Render one folder: kustomization, chart, or plain manifests (recursing as Flux does)."""
    kustomization = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
    if kustomization is not None:
        return _kustomize(folder, base, timeout_s)
    if (folder / CHART_FILE).is_file():
        return _helm(folder, base, values, release_name or folder.name, timeout_s)
    objects: list[dict[str, Any]] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue  # .git, .github workflows, .argocd-source-*.yaml: not manifests
        resolved = entry.resolve()
        if not resolved.is_relative_to(base):
            raise ReconcileError(
                f"{_rel(entry, base)}: symlink points outside the GitOps checkout; refusing to read it"
            )
        if resolved.is_dir():
            objects.extend(_render_dir(resolved, base, values, None, timeout_s))
        elif resolved.is_file() and entry.name.endswith(MANIFEST_SUFFIXES):
            objects.extend(_load_file(resolved, base, shown=_rel(entry, base)))
    return objects


def _rel(p: Path, base: Path) -> str:
    """``p`` relative to the checkout, for messages."""
    try:
        return str(p.relative_to(base))
    except ValueError:
        return str(p)


def _load_file(file: Path, base: Path, shown: str | None = None) -> Iterable[dict[str, Any]]:
    """Every object of one multi-document manifest file."""
    name = shown or _rel(file, base)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ReconcileError(f"{name}: cannot read: {e}") from e
    return parse_manifests(text, name)


def parse_manifests(text: str, source: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream: empty documents skipped, ``kind: List`` expanded.

    ``source`` names the stream in errors (a file, or a renderer's output).
    """
    objects: list[dict[str, Any]] = []
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ReconcileError(f"{source}: invalid YAML{where}: {problem}") from e
    for number, doc in enumerate(documents, start=1):
        if doc is None:
            continue
        where = f"{source}: document {number}"
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise ReconcileError(f"{where}: kind List whose items is not a list")
            for index, item in enumerate(items):
                objects.append(_checked(item, f"{where}, item {index}"))
        else:
            objects.append(_checked(doc, where))
    return objects


def _checked(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` if it is an addressable Kubernetes object, else a ReconcileError naming ``where``."""
    if not isinstance(doc, dict):
        raise ReconcileError(f"{where}: not a Kubernetes object (a YAML {type(doc).__name__}, expected a mapping)")
    for field in ("apiVersion", "kind"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            raise ReconcileError(f"{where}: missing {field}")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise ReconcileError(f"{where}: {doc['kind']} has no metadata.name")
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ReconcileError(f"{where}: metadata.namespace is not a string")
    return doc


# kubectl >= 1.30 reports through klog: E1126 21:14:03.820524 7160 run.go:72] "command failed" err="..."
_KLOG_ERROR = re.compile(r'^[EFW]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "command failed" err="(?P<err>.*)"$')


def _first_error(stderr: str, base: Path) -> str:
    """The renderer's first error line, klog framing removed and checkout paths made relative."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    klog = _KLOG_ERROR.match(first)
    if klog is not None:
        first = klog.group("err").replace('\\"', '"')
    return first.replace(f"{base}/", "").replace(str(base), ".")


def _run_renderer(argv: list[str], what: str, timeout_s: float, base: Path) -> str:
    """Run a renderer with an empty HOME and no kubeconfig (it must never reach a cluster); its stdout."""
    with tempfile.TemporaryDirectory(prefix="gate-render-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "KUBECONFIG": os.devnull,
            "HELM_CACHE_HOME": os.path.join(home, "cache"),
            "HELM_CONFIG_HOME": os.path.join(home, "config"),
            "HELM_DATA_HOME": os.path.join(home, "data"),
        }
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, env=env, timeout=timeout_s, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as e:
            raise ReconcileError(f"{what}: {Path(argv[0]).name} did not finish within {timeout_s:g} s") from e
        except OSError as e:
            raise ReconcileError(f"{what}: cannot run {argv[0]}: {e.strerror or e}") from e
    if done.returncode != 0:
        first = _first_error(done.stderr, base) or f"exit status {done.returncode}"
        raise ReconcileError(f"{what}: {first}")
    return done.stdout


def _kustomize(folder: Path, base: Path, timeout_s: float) -> list[dict[str, Any]]:
    """``kubectl kustomize <folder>`` (or a standalone ``kustomize build``), parsed."""
    shown = _rel(folder, base) or "."
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        argv = [kubectl, "kustomize", str(folder)]
    elif (kustomize := shutil.which("kustomize")) is not None:
        argv = [kustomize, "build", str(folder)]
    else:
        raise ReconcileError(f"{shown}: is a kustomization but neither kubectl nor kustomize is on PATH")
    what = f"{shown}: kustomize"
    return parse_manifests(_run_renderer(argv, what, timeout_s, base), f"{shown} (kustomize output)")


def _helm(folder: Path, base: Path, values: list[Path], release: str, timeout_s: float) -> list[dict[str, Any]]:
    """``helm template <release> <folder> [-f values]...``, parsed."""
    shown = _rel(folder, base) or "."
    helm = shutil.which("helm")
    if helm is None:
        raise ReconcileError(f"{shown}: is a Helm chart but helm is not on PATH")
    argv = [helm, "template", release, str(folder)]
    for v in values:
        argv += ["-f", str(v)]
    what = f"{shown}: helm template"
    return parse_manifests(_run_renderer(argv, what, timeout_s, base), f"{shown} (helm template output)")


# Sync order, as Argo CD and Flux apply: what others depend on first (namespaces, then the types
# custom resources need, then cluster-wide and namespaced configuration, services), then workloads,
# then what fronts or scales them. Unknown kinds (custom resources) go last, after their CRDs.
_ORDER: tuple[tuple[str, ...], ...] = (
    ("Namespace",),
    ("CustomResourceDefinition",),
    (
        "PriorityClass", "StorageClass", "IngressClass", "RuntimeClass", "PersistentVolume",
        "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList",
    ),
    ("NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget"),
    (
        "ServiceAccount", "Role", "RoleList", "RoleBinding", "RoleBindingList",
        "Secret", "SecretList", "ConfigMap", "PersistentVolumeClaim",
    ),
    ("Service", "Endpoints", "EndpointSlice"),
    (
        "DaemonSet", "Pod", "PodTemplate", "ReplicationController", "ReplicaSet",
        "Deployment", "StatefulSet", "Job", "CronJob",
    ),
    ("HorizontalPodAutoscaler", "Ingress", "APIService"),
    ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"),
)
_RANK = {kind: rank for rank, kinds in enumerate(_ORDER) for kind in kinds}


def apply_order(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objects`` sorted into a safe apply order; objects of equal rank keep their order."""
    unknown = len(_ORDER)
    return sorted(objects, key=lambda o: _RANK.get(str(o.get("kind", "")), unknown))


def object_key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """``(group, kind, namespace, name)``: what identifies an object across apiVersions of its group."""
    metadata = obj.get("metadata") or {}
    return (
        api_group(str(obj.get("apiVersion", ""))),
        str(obj.get("kind", "")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name", "")),
    )
