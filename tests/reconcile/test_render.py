"""Rendering a GitOps path: plain manifests, kustomize (real kubectl), Helm, and what must be refused."""

from __future__ import annotations

import collections
import os
import shutil
from pathlib import Path

import pytest

from gate import workloads
from gate.errors import ReconcileError
from gate.reconcile.render import apply_order, object_key, parse_manifests, render

DATA = Path(__file__).resolve().parent.parent / "data" / "gitops"
BOUTIQUE = DATA / "k8s-multidoc-online-boutique.yaml"
PODINFO = DATA / "k8s-deployment-podinfo-frontend.yaml"
COMPONENT = DATA / "kustomize-component-images-newtag.yaml"


def _repo(tmp_path: Path) -> Path:
    """A checkout folder with the corpus manifests laid out as a GitOps repo would hold them."""
    root = tmp_path / "repo"
    (root / "apps" / "boutique").mkdir(parents=True)
    (root / "apps" / "podinfo" / "nested").mkdir(parents=True)
    shutil.copy(BOUTIQUE, root / "apps" / "boutique" / "all.yaml")
    shutil.copy(PODINFO, root / "apps" / "podinfo" / "nested" / "deployment.yml")
    return root


def test_plain_multidoc_renders_every_document(tmp_path: Path) -> None:
    objects = render(_repo(tmp_path), "apps/boutique")
    assert len(objects) == 35
    kinds = collections.Counter(o["kind"] for o in objects)
    assert kinds == {"Deployment": 12, "Service": 12, "ServiceAccount": 11}
    frontend = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "frontend")
    [(path, image)] = workloads.of(frontend).images
    assert path == "spec.template.spec.containers[server]"
    assert image.endswith("/frontend:v0.10.6")


def test_nested_folders_are_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "apps" / "README.md").write_text("not a manifest", encoding="utf-8")
    (root / "apps" / ".github").mkdir()
    (root / "apps" / ".github" / "ci.yaml").write_text("on: push\n", encoding="utf-8")  # hidden: skipped
    objects = render(root, "apps")
    assert len(objects) == 36
    # apps/boutique/all.yaml (in document order) before apps/podinfo/nested/deployment.yml
    assert [o["metadata"]["name"] for o in objects[:35]] == [o["metadata"]["name"] for o in render(root, "apps/boutique")]
    assert "microservices-demo/frontend:" in workloads.of(objects[0]).images[0][1]
    assert workloads.of(objects[-1]).images[0][1].startswith("ghcr.io/stefanprodan/podinfo:")


def test_single_file_and_kind_list(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    assert len(render(root, "apps/podinfo/nested/deployment.yml")) == 1
    (root / "list.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n---\n---\n",
        encoding="utf-8",
    )
    assert [o["metadata"]["name"] for o in render(root, "list.yaml")] == ["a", "b"]


def _write_kustomize_tree(root: Path) -> None:
    """Bases (boutique; podinfo) and an overlay using the real images Component and its own images:."""
    for name, source, extra in (("boutique", BOUTIQUE, ""), ("podinfo", PODINFO, "namePrefix: podinfo-\n")):
        base = root / "base" / name
        base.mkdir(parents=True)
        shutil.copy(source, base / "manifests.yaml")
        (base / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + extra + "resources:\n- manifests.yaml\n",
            encoding="utf-8",
        )
    component = root / "components" / "container-images-tag"
    component.mkdir(parents=True)
    shutil.copy(COMPONENT, component / "kustomization.yaml")
    overlay = root / "overlays" / "prod"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: prod\n"
        "resources:\n- ../../base/boutique\n- ../../base/podinfo\ncomponents:\n- ../../components/container-images-tag\n"
        "images:\n- name: ghcr.io/stefanprodan/podinfo\n  newName: 127.0.0.1:5000/team/podinfo\n"
        "  digest: sha256:" + "ab" * 32 + "\n",
        encoding="utf-8",
    )


def test_kustomize_overlay_with_images_is_rendered_by_real_kubectl(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.fail("kubectl is not on PATH: the kustomize tests need the real renderer")
    root = tmp_path / "repo"
    _write_kustomize_tree(root)
    objects = render(root, "overlays/prod")
    assert len(objects) == 36
    assert {o["metadata"].get("namespace") for o in objects} == {"prod"}
    images = dict(img for o in objects for img in workloads.of(o).images if o["metadata"]["name"] in ("frontend", "redis-cart"))
    assert images["spec.template.spec.containers[server]"].endswith("/frontend:CONTAINER_IMAGES_TAG")
    podinfo = next(o for o in objects if o["metadata"]["name"] == "podinfo-frontend")
    assert workloads.of(podinfo).images[0][1] == "127.0.0.1:5000/team/podinfo@sha256:" + "ab" * 32
    # a kustomization file given directly stands for its folder
    assert len(render(root, "overlays/prod/kustomization.yaml")) == 36


def test_kustomize_failure_names_the_path_and_kustomize_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "kustomization.yaml").write_text("resources:\n- missing.yaml\n", encoding="utf-8")
    with pytest.raises(ReconcileError) as e:
        render(root, "broken")
    message = e.value.diagnostics()
    assert message.startswith("broken: kustomize: ")
    assert "missing.yaml" in message and "\n" not in message
    assert str(root) not in message and "run.go" not in message


def test_helm_chart_without_helm_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    (root / "chart" / "templates").mkdir(parents=True)
    (root / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n", encoding="utf-8")
    (root / "chart" / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\n", encoding="utf-8"
    )
    if shutil.which("helm") is not None:
        objects = render(root, "chart", release_name="rel")
        assert [o["metadata"]["name"] for o in objects] == ["rel-cfg"]
    # whatever this machine has, a PATH without helm must say so rather than read templates as YAML
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(ReconcileError, match=r"^chart: is a Helm chart but helm is not on PATH$"):
        render(root, "chart")


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "apps" / "podinfo" / "bad.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [unclosed\n", encoding="utf-8"
    )
    with pytest.raises(ReconcileError, match=r"^apps/podinfo/bad\.yaml: invalid YAML \(line \d+, column \d+\)"):
        render(root, "apps")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "document 1: ConfigMap has no metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: ConfigMap\nmetadata: {name: a}\n", "document 2: missing apiVersion"),
        ("- just\n- a list\n", "document 1: not a Kubernetes object"),
        ("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret}\n", "document 1, item 0: Secret has no"),
    ],
)
def test_objects_must_be_addressable(text: str, problem: str) -> None:
    with pytest.raises(ReconcileError) as e:
        parse_manifests(text, "apps/x.yaml")
    assert e.value.diagnostics().startswith(f"apps/x.yaml: {problem}")


def test_paths_leaving_the_checkout_are_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", encoding="utf-8")
    for path in ("../outside", "apps/../../outside/secret.yaml", str(outside)):
        with pytest.raises(ReconcileError, match="leaves the GitOps checkout"):
            render(root, path)
    os.symlink(outside, root / "apps" / "escape")
    with pytest.raises(ReconcileError, match=r"^apps/escape: symlink points outside"):
        render(root, "apps")
    with pytest.raises(ReconcileError, match="leaves the GitOps checkout"):
        render(root, "apps/escape")
    with pytest.raises(ReconcileError, match="no such file or folder"):
        render(root, "apps/nothing-here")


def test_apply_order_puts_namespaces_and_crds_first_and_is_stable() -> None:
    def obj(kind: str, name: str, api: str = "v1") -> dict[str, object]:
        return {"apiVersion": api, "kind": kind, "metadata": {"name": name}}

    objects = [
        obj("Deployment", "web", "apps/v1"),
        obj("Widget", "w", "example.com/v1"),
        obj("Service", "web"),
        obj("ConfigMap", "b"),
        obj("ClusterRole", "r", "rbac.authorization.k8s.io/v1"),
        obj("ConfigMap", "a"),
        obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1"),
        obj("ServiceAccount", "sa"),
        obj("Namespace", "shop"),
    ]
    ordered = [(o["kind"], o["metadata"]["name"]) for o in apply_order(objects)]  # type: ignore[index]
    assert ordered == [
        ("Namespace", "shop"),
        ("CustomResourceDefinition", "widgets.example.com"),
        ("ClusterRole", "r"),
        ("ConfigMap", "b"),
        ("ConfigMap", "a"),
        ("ServiceAccount", "sa"),
        ("Service", "web"),
        ("Deployment", "web"),
        ("Widget", "w"),
    ]


def test_object_key_of_namespaced_and_cluster_objects() -> None:
    assert object_key({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "namespace": "n"}}) == (
        "apps", "Deployment", "n", "w")
    assert object_key({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}) == ("", "Namespace", "", "n")
