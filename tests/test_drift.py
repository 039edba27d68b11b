"""How drift compares one manifest with its live object (tbyte_policy.drift.differences): the API's semantics,
one behaviour per test, with the exact pointers and messages."""

from __future__ import annotations

import textwrap

import pytest

from tbyte_policy.audit import build_resources
from tbyte_policy.drift import RenderedManifests, differences, server_dropped
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import Resource
from tbyte_policy.sources import LoadResult
from tbyte_policy.sources.yaml_documents import load_text


def resource(text: str, path: str = "rendered.yaml") -> Resource:
    result = LoadResult()
    load_text(textwrap.dedent(text), path, result)
    (loaded,) = build_resources(result.documents, "shop", [])
    return loaded


def diff(rendered: str, live: str, skip=()) -> list[tuple[str, str]]:
    return [(found.live_pointer, found.message)
            for found in differences(resource(rendered), resource(live, path="live.yaml"), skip)]


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:1.2.0
{container}
"""


def deployment(container: str = "", **pod: str) -> str:
    text = DEPLOYMENT.replace("{container}", textwrap.indent(textwrap.dedent(container).strip("\n"), " " * 10))
    return text + "".join(f"      {key}: {value}\n" for key, value in pod.items())


def test_only_what_the_manifest_sets_is_compared():
    live = deployment("""
        imagePullPolicy: IfNotPresent
        terminationMessagePath: /dev/termination-log
        resources: {}
    """, dnsPolicy="ClusterFirst", restartPolicy="Always", securityContext="{}")
    assert diff(deployment(), live) == []


def test_quantities_compare_by_value():
    rendered = deployment("resources: {requests: {cpu: 1000m, memory: 1Gi}, limits: {cpu: 0.5, memory: 2048Mi}}")
    same = deployment("resources: {requests: {cpu: '1', memory: 1024Mi}, limits: {cpu: 500m, memory: 2Gi}}")
    assert diff(rendered, same) == []
    more = deployment("resources: {requests: {cpu: '1', memory: 1024Mi}, limits: {cpu: 600m, memory: 2Gi}}")
    assert diff(rendered, more) == [(
        "/spec/template/spec/containers/0/resources/limits/cpu",
        "container web: resources.limits.cpu is 600m live but 0.5 in the manifest (rendered.yaml:10)")]


def test_only_quantity_fields_compare_as_quantities():
    rendered = deployment("env: [{name: SIZE, value: 1Gi}]")
    assert [pointer for pointer, _ in diff(rendered, deployment("env: [{name: SIZE, value: 1024Mi}]"))] == [
        "/spec/template/spec/containers/0/env/0/value"]


def test_resource_maps_compare_whole():
    rendered = deployment("resources: {limits: {memory: 1Gi}}")
    live = deployment("resources: {limits: {memory: 1Gi, nvidia.com/gpu: '1'}}")
    assert diff(rendered, live) == [(
        "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu",
        'container web: resources.limits["nvidia.com/gpu"] is 1 live but not in the manifest (rendered.yaml:10)')]


def test_int_or_string_fields_compare_by_text():
    rendered = deployment("readinessProbe: {httpGet: {port: 8080}}")
    live = deployment("readinessProbe: {httpGet: {port: '8080', scheme: HTTP}, periodSeconds: 10}")
    assert diff(rendered, live) == []


def test_a_zero_value_in_the_manifest_equals_a_field_left_out_live():
    rendered = deployment("args: []\nsecurityContext: {privileged: false}", hostNetwork="false", nodeSelector="{}")
    assert diff(rendered, deployment()) == []


def test_containers_env_and_ports_match_by_key_not_position():
    rendered = """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            spec:
              containers:
                - name: web
                  image: web:1
                  env: [{name: A, value: "1"}, {name: B, value: "2"}]
                  ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP}]
                - {name: proxy, image: proxy:1}
        """
    live = """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            spec:
              containers:
                - {name: proxy, image: proxy:2}
                - name: web
                  image: web:1
                  env: [{name: B, value: "2"}, {name: A, value: "1"}]
                  ports: [{containerPort: 53, protocol: UDP}, {containerPort: 80, protocol: TCP}]
        """
    assert diff(rendered, live) == [(
        "/spec/template/spec/containers/0/image",
        "container proxy: image is proxy:2 live but proxy:1 in the manifest (rendered.yaml:12)")]


def test_entries_added_to_lists_the_server_never_fills_are_drift():
    live = deployment("""
        env: [{name: DEBUG, value: "true"}]
        args: [--verbose]
    """, volumes="[{name: scratch, emptyDir: {}}]")
    assert diff(deployment(), live) == [
        ("/spec/template/spec/containers/0/env/0",
         "container web: env[DEBUG] is set live but not in the manifest (rendered.yaml:8)"),
        ("/spec/template/spec/containers/0/args",
         "container web: args is set live but not in the manifest (rendered.yaml:8)"),
        ("/spec/template/spec/volumes/0",
         "spec.template.spec.volumes[scratch] is set live but not in the manifest (rendered.yaml:6)"),
    ]


def test_an_entry_missing_live_is_named_by_its_key():
    rendered = deployment("env: [{name: A, value: secret-a}, {name: B, valueFrom: {secretKeyRef: {name: s, key: b}}}]")
    live = deployment("env: [{name: B, valueFrom: {secretKeyRef: {name: s, key: b}}}]")
    assert diff(rendered, live) == [(
        "/spec/template/spec/containers/0/env",
        "container web: env[A] is in the manifest (rendered.yaml:10) but not live")]


def test_env_values_configmap_data_and_secrets_are_never_quoted():
    assert diff(deployment("env: [{name: TOKEN, value: rendered-value}]"),
                deployment("env: [{name: TOKEN, value: live-value}]")) == [(
        "/spec/template/spec/containers/0/env/0/value",
        "container web: env[TOKEN].value differs from the manifest (rendered.yaml:10)")]
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {KEY: %s}\n"
    assert diff(configmap % "rendered-value", configmap % "live-value") == [
        ("/data/KEY", "data.KEY differs from the manifest (rendered.yaml:4)")]
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, annotations: {note: %s}}\ntype: Opaque\n"
    assert diff(secret % "rendered-note", secret % "live-note") == [
        ("/metadata/annotations/note", 'metadata.annotations.note differs from the manifest (rendered.yaml:3)')]


def test_command_lines_and_blocks_holding_env_values_are_never_quoted():
    rendered = deployment("args: [--db=postgres://app@db]")
    assert diff(rendered, deployment("args: [--db=postgres://app:hunter2@db]")) == [(
        "/spec/template/spec/containers/0/args/0",
        "container web: args[0] differs from the manifest (rendered.yaml:10)")]
    with_init = deployment(initContainers="[{name: init, image: busybox, env: [{name: T, value: hunter2}]}]")
    assert diff(with_init, deployment()) == [(
        "/spec/template/spec/initContainers",
        "spec.template.spec.initContainers is set in the manifest (rendered.yaml:11) but absent live")]
    template = deployment("env: [{name: T, value: hunter2}]")
    assert diff(template, template.replace("spec:\n  template:", "spec:\n  paused: true\n  template-x:")) == [(
        "/spec/template", "spec.template is set in the manifest (rendered.yaml:5) but absent live")]


def test_null_in_a_manifest_sets_nothing():
    assert diff(deployment(nodeSelector="null", affinity="~"), deployment(nodeSelector="{disk: ssd}")) == []


def test_selectors_compare_whole_minus_the_hash_labels_controllers_add():
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: %s\n  ports: [{port: 80}]\n"
    assert diff(service % "{app: web}", service % "{app: web, rollouts-pod-template-hash: 6d4f8}") == []
    assert diff(service % "{app: web}", service % "{app: web, track: canary}") == [
        ("/spec/selector/track", "spec.selector.track is canary live but not in the manifest (rendered.yaml:5)")]


def test_labels_and_annotations_compare_the_keys_the_manifest_sets():
    rendered = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {app: web}\n  annotations: {a: '1'}\n"
    live = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {app: web, extra: x}\n"
            "  annotations: {a: '1', kubectl.kubernetes.io/last-applied-configuration: '{}'}\n")
    assert diff(rendered, live) == []


def test_a_manifest_copied_from_the_cluster_ignores_what_controllers_wrote():
    rendered = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n"
                "    deployment.kubernetes.io/revision: '3'\n    kubectl.kubernetes.io/last-applied-configuration: x\n"
                "spec: {replicas: 2}\nstatus: {replicas: 2}\n")
    live = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n"
            "    deployment.kubernetes.io/revision: '7'\nspec: {replicas: 2}\nstatus: {replicas: 5}\n")
    assert diff(rendered, live) == []


def test_lists_without_a_key_compare_in_order():
    policy = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n"
              "  podSelector: {}\n  ingress:\n%s")
    rules = "    - ports: [{port: 80}]\n    - ports: [{port: 443}]\n"
    assert diff(policy % rules, policy % rules.replace("port: 80}", "port: 80, protocol: TCP}")) == []
    assert diff(policy % rules, policy % "    - ports: [{port: 80}]\n") == [(
        "/spec/ingress",
        'spec.ingress is [{"ports": [{"port": 80}]}] live but [{"ports": [{"port": 80}]}, {"ports": [{"port": 443}]}] '
        "in the manifest (rendered.yaml:6)")]
    assert [pointer for pointer, _ in diff(policy % rules, policy % rules.replace("443", "8443"))] == [
        "/spec/ingress/1/ports/0/port"]


def test_network_policy_rules_added_live_are_drift():
    policy = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n"
    assert [pointer for pointer, _ in diff(policy, policy + "  egress: [{}]\n")] == ["/spec/egress"]


def test_skipped_pointers_and_fields_the_server_drops():
    rendered = deployment().replace("spec:\n  template", "spec:\n  replicas: 2\n  template")
    assert diff(rendered, rendered.replace("replicas: 2", "replicas: 7"), skip={"/spec/replicas"}) == []
    service = ("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
               "  ports: [{port: 80}]\n")
    affinity = "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n"  # with sessionAffinity None
    assert diff(service + affinity, service, skip=server_dropped(resource(service + affinity))) == []


def test_another_api_version_compares_only_labels_and_annotations():
    v1 = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, labels: {a: '1'}}\n" \
         "spec: {maxReplicas: 5, targetCPUUtilizationPercentage: 70}\n"
    v2 = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, labels: {a: '2'}}\n" \
         "spec: {maxReplicas: 5, metrics: []}\n"
    assert [pointer for pointer, _ in diff(v1, v2)] == ["/metadata/labels/a"]


def test_a_pod_compares_its_images_only():
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: %s, args: [%s]}]\n"
    assert diff(pod % ("img:1", "a"), pod % ("img:1", "b") + "  tolerations: [{operator: Exists}]\n") == []
    assert [pointer for pointer, _ in diff(pod % ("img:1", "a"), pod % ("img:2", "a"))] == [
        "/spec/containers/0/image"]


@pytest.mark.parametrize(("manifest", "reason"), [
    ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: shop}\n",
     "kind not read by the live audit"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\n", "outside the namespace read"),
    ("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\n", "unknown"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: t, namespace: shop, annotations: {helm.sh/hook: test}}\n",
     "Helm hook"),
    ("apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-, namespace: shop}\n", "generated name"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n", None),
])
def test_what_a_live_run_can_compare(manifest, reason):
    live = Inventory([], "shop", unreadable_kinds=["Secret"],
                     collected_kinds=["Namespace", "ConfigMap", "Secret", "Pod", "Job"])
    rendered = RenderedManifests([resource(manifest)], namespace="shop", default_namespace="shop")
    assert rendered.not_compared(rendered.inventory.resources[0], live) == reason
