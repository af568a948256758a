"""gate.workloads: every container image of any object, and every shape that must block it."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from gate import workloads

POD_SPEC: dict[str, Any] = {
    "initContainers": [{"name": "init", "image": "busybox:1"}],
    "containers": [{"name": "app", "image": "app:2"}, {"image": "side:3"}],
    "ephemeralContainers": [{"name": "debug", "image": "debug:4"}],
}
EXPECTED = [("initContainers[init]", "busybox:1"), ("containers[app]", "app:2"), ("containers[1]", "side:3"),
            ("ephemeralContainers[debug]", "debug:4")]


def with_pod_spec(api_version: str, kind: str, path: tuple[str, ...], pod_spec: Any) -> dict[str, Any]:
    """An object of ``kind`` with ``pod_spec`` at ``path``."""
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    node = obj
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = copy.deepcopy(pod_spec)
    return obj


#: every kind of the table, as a GitOps repository holds it (apiVersion, kind, pod spec path)
KINDS = [
    ("v1", "Pod", ("spec",)),
    ("v1", "PodTemplate", ("template", "spec")),
    ("v1", "ReplicationController", ("spec", "template", "spec")),
    ("apps/v1", "Deployment", ("spec", "template", "spec")),
    ("apps/v1", "ReplicaSet", ("spec", "template", "spec")),
    ("apps/v1", "StatefulSet", ("spec", "template", "spec")),
    ("apps/v1", "DaemonSet", ("spec", "template", "spec")),
    ("batch/v1", "Job", ("spec", "template", "spec")),
    ("batch/v1", "CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ("argoproj.io/v1alpha1", "Rollout", ("spec", "template", "spec")),
    ("serving.knative.dev/v1", "Service", ("spec", "template", "spec")),
    ("serving.knative.dev/v1", "Configuration", ("spec", "template", "spec")),
    ("serving.knative.dev/v1", "Revision", ("spec",)),
    ("apps.openshift.io/v1", "DeploymentConfig", ("spec", "template", "spec")),
]


def test_the_table_holds_every_kind_tested_here() -> None:
    assert {(workloads.api_group(v), k) for v, k, _ in KINDS} == set(workloads.KINDS)


@pytest.mark.parametrize(("api_version", "kind", "path"), KINDS, ids=[k[1] + "@" + k[0] for k in KINDS])
def test_every_container_of_every_known_kind(api_version: str, kind: str, path: tuple[str, ...]) -> None:
    workload = workloads.of(with_pod_spec(api_version, kind, path, POD_SPEC))
    prefix = ".".join(path)
    assert workload.problems == ()
    assert workload.images == [(f"{prefix}.{where}", image) for where, image in EXPECTED]
    assert workloads.pod_spec_at(api_version, kind) == workloads.PodSpecAt(path, workloads.KINDS[
        (workloads.api_group(api_version), kind)].unless)


@pytest.mark.parametrize(("api_version", "kind", "path"), KINDS, ids=[k[1] + "@" + k[0] for k in KINDS])
def test_a_known_kind_without_its_pod_spec_is_blocked(api_version: str, kind: str, path: tuple[str, ...]) -> None:
    for spec in (None, "x", [], {"nodeSelector": {}}):
        workload = workloads.of(with_pod_spec(api_version, kind, path, spec))
        assert workload.blocked and workload.images == [], spec
        assert kind in workload.problems[0] and ".".join(path) in workload.problems[0]
    bare = workloads.of({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
    assert bare.blocked


def test_a_rollout_running_a_referenced_deployment_has_no_template_of_its_own() -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"},
               "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}
    assert workloads.of(rollout) == workloads.Workload((), ())


def test_the_core_service_is_not_the_knative_one() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    assert workloads.of(service) == workloads.Workload((), ())
    assert workloads.pod_spec_at("v1", "Service") is None
    assert workloads.pod_spec_at("serving.knative.dev/v1", "Service") is not None


def test_an_unknown_custom_resource_is_walked_for_containers() -> None:
    crd = {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "annotations": {"containers": "x"}},
        "spec": {
            "runner": {"podSpec": {"containers": [{"name": "run", "image": "run:1"}]}},
            "jobs": [{"template": {"initContainers": [{"name": "prep", "image": "prep:1"}],
                                   "containers": [{"name": "job", "image": "job:1"}]}}],
        },
        "status": {"containers": "reported by a controller, not run"},
    }
    workload = workloads.of(crd)
    assert workload.problems == ()
    assert workload.images == [
        ("spec.runner.podSpec.containers[run]", "run:1"),
        ("spec.jobs[0].template.initContainers[prep]", "prep:1"),
        ("spec.jobs[0].template.containers[job]", "job:1"),
    ]
    assert workloads.pod_spec_at("example.com/v1", "Widget") is None


def test_a_known_kind_in_an_unexpected_group_is_still_walked() -> None:
    old = with_pod_spec("extensions/v1beta1", "Deployment", ("spec", "template", "spec"), POD_SPEC)
    assert len(workloads.of(old).images) == 4


@pytest.mark.parametrize(
    ("containers", "problem"),
    [
        ("x", "spec.template.spec.containers must be a list of containers, found a string"),
        ({"web": {"image": "web:1"}}, "spec.template.spec.containers must be a list of containers, found a mapping"),
        (["web"], "spec.template.spec.containers[0] must be a container (a mapping), found a string"),
        ([None], "spec.template.spec.containers[0] must be a container (a mapping), found nothing"),
        ([{"name": "web"}], "container spec.template.spec.containers[web] has no image (found nothing)"),
        ([{"name": "web", "image": 7}], "container spec.template.spec.containers[web] has no image (found a number)"),
        ([{"name": "web", "image": ""}], "container spec.template.spec.containers[web] has no image (found an empty string)"),
        ([{"name": "web", "image": ["a"]}], "container spec.template.spec.containers[web] has no image (found a list)"),
    ],
)
def test_a_malformed_container_field_blocks(containers: Any, problem: str) -> None:
    for api_version, kind in (("apps/v1", "Deployment"), ("example.com/v1", "Widget")):
        obj = with_pod_spec(api_version, kind, ("spec", "template", "spec"), {"containers": containers})
        workload = workloads.of(obj)
        assert workload.blocked, (kind, containers)
        assert any(p.startswith(problem) for p in workload.problems), workload.problems


def test_the_good_containers_are_still_listed_beside_a_bad_one() -> None:
    obj = with_pod_spec("apps/v1", "Deployment", ("spec", "template", "spec"),
                        {"containers": [{"name": "ok", "image": "ok:1"}], "initContainers": "x"})
    workload = workloads.of(obj)
    assert workload.images == [("spec.template.spec.containers[ok]", "ok:1")] and workload.blocked


@pytest.mark.parametrize("obj", [None, "Deployment", 7, ["a"]])
def test_what_is_not_an_object_is_blocked(obj: Any) -> None:
    assert workloads.of(obj).blocked


def test_config_data_named_containers_is_a_file_not_a_container() -> None:
    for kind in ("ConfigMap", "Secret"):
        assert workloads.of({"apiVersion": "v1", "kind": kind, "data": {"containers": "x"}}) == workloads.Workload((), ())
    assert workloads.of({"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "x"}}).images == []


def test_deep_nesting_is_bounded_and_blocks() -> None:
    deep: dict[str, Any] = {"containers": [{"name": "hidden", "image": "hidden:1"}]}
    for _ in range(workloads.MAX_DEPTH + 50):
        deep = {"nested": deep}
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": deep}
    workload = workloads.of(obj)
    assert workload.blocked and "too deep" in workload.problems[0]
    # a list nested 100,000 deep (a JSON body can carry one) is walked without recursion
    bottom: list[Any] = []
    node = bottom
    for _ in range(100_000):
        child: list[Any] = []
        node.append(child)
        node = child
    assert workloads.of({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": bottom}}).blocked


def test_a_self_referencing_object_is_bounded() -> None:
    loop: dict[str, Any] = {"containers": [{"name": "a", "image": "a:1"}]}
    loop["again"] = loop  # a YAML alias can build this
    workload = workloads.of({"apiVersion": "example.com/v1", "kind": "Widget", "spec": loop})
    assert workload.blocked


def test_an_alias_bomb_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workloads, "MAX_NODES", 10_000)
    level: Any = [{"containers": [{"name": "a", "image": "a:1"}]}]
    for _ in range(30):  # 2**30 paths through shared lists
        level = [level, level]
    workload = workloads.of({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": level}})
    assert workload.blocked and "too large" in workload.problems[-1]


def test_round_trip_yaml_gives_the_container_mappings_themselves() -> None:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    text = (
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: hello  # the app\n        image: ghcr.io/knative/helloworld-go:1\n"
    )
    obj = YAML().load(io.StringIO(text))
    [container] = workloads.of(obj).containers
    assert container.path == "spec.template.spec.containers[hello]"
    assert container.image == "ghcr.io/knative/helloworld-go:1"
    assert isinstance(container.node, CommentedMap) and container.node.lc.line == 8
