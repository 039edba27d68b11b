"""What the API server does to an object a client writes, so that the test clusters look like real ones.

Ported from the Kubernetes sources, not guessed: the defaulting functions of ``pkg/apis/core/v1``,
``apps/v1``, ``batch/v1``, ``autoscaling/v2`` and ``networking/v1`` (``defaults.go``, plus the declarative
``+default`` of container and Service ports), resource quantities re-emitted in canonical form
(``apimachinery/pkg/api/resource/quantity.go``: ``1000m`` -> ``1``, ``0.5Gi`` -> ``512Mi``, ``1.5`` ->
``1500m``, requests and limits rounded up to milli-units first), JSON re-serialised in the API types' field
order rather than the manifest's, and the ``managedFields`` of the writers.

Nothing here imports the project: drift's normalisation is tested against this, not with itself.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal

# --- quantities (resource.Quantity) ---

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))((?:[eE][+-]?\d+)|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")


def canonical_quantity(value: str | int | float, milli: bool = False) -> str:
    """The string the API server stores for a quantity (``milli``: rounded up to milli-units first, as
    SetDefaults_ResourceList does for requests and limits)."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        form, amount = "BinarySI", number * 2 ** _BINARY[suffix]
    elif suffix[:1] in ("e", "E"):
        form, amount = "DecimalExponent", number.scaleb(int(suffix[1:]))
    else:
        form, amount = "DecimalSI", number.scaleb(_DECIMAL[suffix])
    scale = Decimal("0.001") if milli else Decimal("0.000000001")
    amount = (amount / scale).to_integral_value(ROUND_CEILING) * scale
    if amount == 0:
        return "0"
    if form == "BinarySI" and (abs(amount) < 1024 or amount != amount.to_integral_value()):
        form = "DecimalSI"  # "This avoids rounding and hopefully confusion, too."
    if form == "BinarySI":
        mantissa, exponent = int(amount), 0
        while mantissa % 1024 == 0 and exponent < 60:
            mantissa, exponent = mantissa // 1024, exponent + 10
        return f"{mantissa}{next(name for name, power in _BINARY.items() if power == exponent) if exponent else ''}"
    # base 10: the largest exponent, a multiple of 3, that leaves an integer mantissa
    exponent = -9
    while exponent < 18 and amount.scaleb(-(exponent + 3)) == amount.scaleb(-(exponent + 3)).to_integral_value():
        exponent += 3
    mantissa = int(amount.scaleb(-exponent))
    if form == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return f"{mantissa}{next(name for name, power in _DECIMAL.items() if power == exponent)}"


def _canonical_resources(resources: dict) -> None:
    for bound in ("requests", "limits"):
        for name, value in (resources.get(bound) or {}).items():
            resources[bound][name] = canonical_quantity(value, milli=True)


# --- pkg/apis/core/v1 ---

def _pull_policy(image: str) -> str:
    """SetDefaults_Container: Always for the tag ``latest`` or no tag at all (ParseImageName), else IfNotPresent."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    return "Always" if tag == "latest" or (not tag and not digest) else "IfNotPresent"


def _default_probe(probe: dict) -> None:
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        probe.setdefault(key, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def _default_container(container: dict) -> None:
    container.setdefault("imagePullPolicy", _pull_policy(container["image"]))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})  # a struct, not a pointer: always serialised
    _canonical_resources(container["resources"])
    for port in container.get("ports", []):
        port.setdefault("protocol", "TCP")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in container:
            _default_probe(container[probe])
    for variable in container.get("env", []):
        field_ref = (variable.get("valueFrom") or {}).get("fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")  # SetDefaults_ObjectFieldSelector


_VOLUME_SOURCES = ("emptyDir", "configMap", "secret", "projected", "downwardAPI", "persistentVolumeClaim",
                   "hostPath", "nfs", "csi", "ephemeral", "image")


def default_pod_spec(spec: dict, restart_policy: str = "Always") -> None:
    """SetDefaults_PodSpec and what it reaches: containers, probes, ports, env, volumes."""
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    if "serviceAccountName" in spec:
        spec["serviceAccount"] = spec["serviceAccountName"]  # the deprecated alias, set by conversion
    for key in ("initContainers", "containers"):
        for container in spec.get(key, []):
            _default_container(container)
    for volume in spec.get("volumes", []):
        if not any(source in volume for source in _VOLUME_SOURCES):
            volume["emptyDir"] = {}  # SetDefaults_Volume
        for source in ("configMap", "secret", "downwardAPI", "projected"):
            if source in volume:
                volume[source].setdefault("defaultMode", 420)
        if "sizeLimit" in volume.get("emptyDir", {}):
            volume["emptyDir"]["sizeLimit"] = canonical_quantity(volume["emptyDir"]["sizeLimit"])


def _default_template(template: dict, restart_policy: str = "Always") -> None:
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    default_pod_spec(template["spec"], restart_policy)


def _default_service(spec: dict) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    for port in spec.get("ports", []):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port["port"]
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")


# --- apps/v1, batch/v1, autoscaling/v2, networking/v1 ---

def _default_deployment(spec: dict) -> None:
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec["template"])


def _default_statefulset(spec: dict) -> None:
    spec.setdefault("podManagementPolicy", "OrderedReady")
    update = spec.setdefault("updateStrategy", {})
    if "type" not in update:
        update["type"] = "RollingUpdate"
        update.setdefault("rollingUpdate", {})
    if update["type"] == "RollingUpdate" and "rollingUpdate" in update:
        update["rollingUpdate"].setdefault("partition", 0)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec["template"])
    for claim in spec.get("volumeClaimTemplates", []):
        claim["spec"].setdefault("volumeMode", "Filesystem")  # SetDefaults_PersistentVolumeClaimSpec
        _canonical_resources(claim["spec"].get("resources", {}))


def _default_cronjob(spec: dict) -> None:
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    _default_template(spec["jobTemplate"]["spec"]["template"], "Never")


_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
             "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _default_hpa(spec: dict) -> None:
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]
    if "behavior" in spec:  # GenerateHPAScaleUpRules / GenerateHPAScaleDownRules: unset fields take defaults
        for direction, defaults in (("scaleUp", _SCALE_UP), ("scaleDown", _SCALE_DOWN)):
            rules = spec["behavior"].setdefault(direction, {})
            for key, value in defaults.items():
                rules.setdefault(key, [dict(policy) for policy in value] if isinstance(value, list) else value)
    for metric in spec["metrics"]:
        for source in metric.values():
            target = source.get("target", {}) if isinstance(source, dict) else {}
            for key in ("averageValue", "value"):
                if key in target:
                    target[key] = canonical_quantity(target[key])


def _default_network_policy(spec: dict) -> None:
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction, []):
            for port in rule.get("ports", []):
                port.setdefault("protocol", "TCP")


_BY_KIND = {"Deployment": _default_deployment, "Rollout": lambda spec: _default_template(spec["template"]),
            "StatefulSet": _default_statefulset, "CronJob": _default_cronjob, "Service": _default_service,
            "HorizontalPodAutoscaler": _default_hpa, "NetworkPolicy": _default_network_policy}


def _fields(node: object) -> dict:
    """A FieldsV1 set: the fields a manager owns (list entries by position, as ``i:``-less markers)."""
    if isinstance(node, dict):
        return {".": {}, **{f"f:{key}": _fields(value) for key, value in node.items()}} if node else {}
    return {}


def _go_order(node: object) -> object:
    """Re-serialised by the API server: keys in the types' field order, not the manifest's (sorted here,
    which is as far from a hand-written manifest's order as the Go structs are)."""
    if isinstance(node, dict):
        return {key: _go_order(node[key]) for key in sorted(node)}
    if isinstance(node, list):
        return [_go_order(item) for item in node]
    return node


def server_apply(obj: dict, time: str) -> dict:
    """The object as the API server stores it after ``kubectl apply`` created it: defaulted, quantities
    canonical, fields reordered, with the managedFields of kubectl (and its defaults owned by nobody)."""
    kind = obj["kind"]
    if kind in _BY_KIND:
        _BY_KIND[kind](obj["spec"])
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif kind == "ConfigMap" and "binaryData" in obj:
        obj.setdefault("data", {})
    applied = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "status")}
    obj["metadata"]["managedFields"] = [{
        "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": obj["apiVersion"],
        "time": time, "fieldsType": "FieldsV1", "fieldsV1": _fields({
            key: value for key, value in applied.items() if key != "metadata"} | {"metadata": {
                key: obj["metadata"][key] for key in ("labels", "annotations") if key in obj["metadata"]}})}]
    ordered = _go_order(obj)
    obj.clear()
    obj.update(ordered)
    return obj
