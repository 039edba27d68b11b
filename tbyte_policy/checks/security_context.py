"""security-context: the Pod Security Standards "restricted" profile, plus host access and service-account tokens.

Fields that exist on both levels (runAsNonRoot, runAsUser, runAsGroup, seccompProfile) are read as the
kubelet applies them: the container's value when it sets one, else the pod's. Fields that only exist on
the container (privileged, allowPrivilegeEscalation, capabilities, readOnlyRootFilesystem) are read from
the container alone; the same key in the pod's securityContext is not an API field and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.memo import per_inventory
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import (
    ContainerView,
    ObjectRef,
    PodView,
    Problem,
    Resource,
    escape_pointer_part,
    integer,
    mapping,
    sequence,
)

SECCOMP_CONFINED = ("RuntimeDefault", "Localhost")
PSS_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
_SECCOMP_ANNOTATIONS = ("seccomp.security.alpha.kubernetes.io/", "container.seccomp.security.alpha.kubernetes.io/")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return integer(value) is not None


def _is_profile(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("type"), str)


def effective(container: ContainerView, key: str, accept: Callable[[Any], bool]) -> tuple[Any, str, str]:
    """(value, pointer, level) of a field the container's securityContext overrides on the pod's; unset, the
    pointer is where the container's field belongs."""
    for context, base, level in ((container.security_context, f"{container.pointer}/securityContext", "container"),
                                 (container.pod.security_context, f"{container.pod.pointer}/securityContext", "pod")):
        if accept(context.get(key)):
            return context[key], f"{base}/{key}", level
    return None, _context_pointer(container), ""


def _context_pointer(container: ContainerView) -> str:
    """Where a missing container-level field belongs: its securityContext, or the container when it has none."""
    return f"{container.pointer}/securityContext" if isinstance(container.raw.get("securityContext"), dict) \
        else container.pointer


def _misplaced(container: ContainerView, key: str) -> str:
    if key in container.pod.security_context:
        return f" ({key} in the pod's securityContext is not an API field and has no effect)"
    return ""


def _windows(pod: PodView) -> bool:
    # The restricted profile exempts Windows pods from the Linux-only controls (seccomp, capabilities,
    # privilege escalation): those fields mean nothing there.
    return mapping(pod.spec.get("os")).get("name") == "windows"


@check("run-as-non-root", "container")
def run_as_non_root(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    value, pointer, level = effective(container, "runAsNonRoot", _is_bool)
    if value is True:
        return
    if value is False:
        yield Problem(f"container {container.name} may run as root: its {level} securityContext sets "
                      f"runAsNonRoot: false", pointer, container.name)
    else:
        yield Problem(f"container {container.name} may run as root: neither it nor the pod sets "
                      f"securityContext.runAsNonRoot: true, so an image whose user is root runs as root",
                      _context_pointer(container), container.name)


@check("run-as-root-id", "container")
def run_as_root_id(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    for key, what in (("runAsUser", "user ID 0 (root)"), ("runAsGroup", "group ID 0 (the root group)")):
        value, pointer, level = effective(container, key, _is_id)
        if value == 0:
            yield Problem(f"container {container.name} runs with {what}: its {level} securityContext sets "
                          f"{key}: 0", pointer, container.name)


@check("user-group-id-low", "container", min_id=10000)
def user_group_id_low(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    minimum = ctx.params["min_id"]
    unset = []
    for key in ("runAsUser", "runAsGroup"):
        value, pointer, level = effective(container, key, _is_id)
        if value is None:
            unset.append(key)
        elif value <= minimum:
            yield Problem(f"container {container.name} runs with {key} {value} (from its {level} securityContext), "
                          f"not above {minimum}: it may share the ID of a user of the node", pointer, container.name)
    if unset:
        yield Problem(f"container {container.name} sets no {' or '.join(unset)} (the image decides); set IDs above "
                      f"{minimum} so they cannot match a user of the node", _context_pointer(container), container.name)


def _runs_as_non_root(container: ContainerView) -> bool:
    """Whether the container is meant to run as a user other than root: a non-zero runAsUser, or, without
    one, runAsNonRoot: true."""
    user, _, _ = effective(container, "runAsUser", _is_id)
    if user is not None:
        return user != 0
    return effective(container, "runAsNonRoot", _is_bool)[0] is True


@check("run-as-non-root-unverifiable", "container")
def run_as_non_root_unverifiable(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if _windows(container.pod):
        return
    required, pointer, level = effective(container, "runAsNonRoot", _is_bool)
    if required is True and effective(container, "runAsUser", _is_id)[0] is None:
        yield Problem(f"container {container.name} requires runAsNonRoot (its {level} securityContext) but neither it "
                      f"nor the pod sets runAsUser: the kubelet then reads the user from the image and refuses to "
                      f"start the container when that user is a name (nginx, node) or root", pointer, container.name)


@check("run-as-group-unset", "container")
def run_as_group_unset(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if _windows(container.pod):
        return
    user, pointer, level = effective(container, "runAsUser", _is_id)
    if user and effective(container, "runAsGroup", _is_id)[0] is None:
        yield Problem(f"container {container.name} runs as user {user} (its {level} securityContext) but neither it "
                      f"nor the pod sets runAsGroup: the primary group then comes from the image's /etc/passwd, and "
                      f"is 0 (the root group) when the image does not list user {user}", pointer, container.name)


def persistent_volumes(pods: PodView) -> dict[str, tuple[str, bool]]:
    """name -> (what backs it, read-only) of the pod's volumes on provisioned storage: PersistentVolumeClaims,
    generic ephemeral volumes and a StatefulSet's volumeClaimTemplates (which take precedence over a pod
    volume of the same name)."""
    found: dict[str, tuple[str, bool]] = {}
    for volume in pods.volumes:
        name = volume.get("name")
        claim = volume.get("persistentVolumeClaim")
        if not isinstance(name, str):
            continue
        if isinstance(claim, dict):
            claim_name = claim.get("claimName")
            what = f"PersistentVolumeClaim {claim_name}" if isinstance(claim_name, str) else "a PersistentVolumeClaim"
            found[name] = (what, claim.get("readOnly") is True)
        elif isinstance(volume.get("ephemeral"), dict):
            found[name] = ("a generic ephemeral volume", False)
    if pods.resource.kind == "StatefulSet":
        for template in sequence(pods.resource.spec.get("volumeClaimTemplates")):
            name = mapping(mapping(template).get("metadata")).get("name")
            if isinstance(name, str):
                found[name] = (f"the claims of volumeClaimTemplate {name}", False)
    return found


def _mounts(container: ContainerView) -> Iterator[tuple[int, dict]]:
    for index, mount in enumerate(sequence(container.raw.get("volumeMounts"))):
        if isinstance(mount, dict) and isinstance(mount.get("name"), str):
            yield index, mount


@check("volume-not-writable-by-non-root", "container")
def volume_not_writable_by_non_root(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    pods = container.pod
    if _windows(pods) or integer(pods.security_context.get("fsGroup")) is not None \
            or not _runs_as_non_root(container):
        return
    volumes = persistent_volumes(pods)
    for index, mount in _mounts(container):
        name = mount["name"]
        if name not in volumes or volumes[name][1] or mount.get("readOnly") is True:
            continue
        # An init container that may run as root can hand the volume to the user (chown) before the others start.
        if any(not _runs_as_non_root(init) and any(other["name"] == name for _, other in _mounts(init))
               for init in pods.containers(frozenset({"init"}))):
            continue
        yield Problem(f"container {container.name} runs as a non-root user and mounts volume {name} "
                      f"({volumes[name][0]}) read-write, but the pod sets no fsGroup: a newly provisioned volume's "
                      f"root directory belongs to root, so the process cannot write to it",
                      f"{container.pointer}/volumeMounts/{index}", container.name)


@check("fs-group-change-recursive", "pod")
def fs_group_change_recursive(pods: PodView, ctx: CheckContext) -> Iterator[Problem]:
    context = pods.security_context
    if _windows(pods) or integer(context.get("fsGroup")) is None \
            or context.get("fsGroupChangePolicy") == "OnRootMismatch":
        return
    mounted = {mount["name"] for container in pods.containers() for _, mount in _mounts(container)}
    volumes = [name for name in persistent_volumes(pods) if name in mounted]
    if volumes:
        policy = context.get("fsGroupChangePolicy")
        setting = f"fsGroupChangePolicy: {policy}" if isinstance(policy, str) else "no fsGroupChangePolicy (Always)"
        yield Problem(f"the pod sets fsGroup with {setting}: at every start the kubelet walks the persistent "
                      f"volume{'s' if len(volumes) > 1 else ''} {', '.join(sorted(volumes))} and gives every file "
                      f"the group and group write; the start slows with the number of files, and software that "
                      f"checks its files' permissions (PostgreSQL's data directory, SSH keys) refuses to start",
                      f"{pods.pointer}/securityContext/" + ("fsGroupChangePolicy" if policy is not None else "fsGroup"))


@check("privilege-escalation-allowed", "container")
def privilege_escalation_allowed(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if _windows(container.pod):
        return
    value = container.security_context.get("allowPrivilegeEscalation")
    if value is True:
        yield Problem(f"container {container.name} sets allowPrivilegeEscalation: true",
                      f"{container.pointer}/securityContext/allowPrivilegeEscalation", container.name)
    elif value is not False:
        yield Problem(f"container {container.name} does not set allowPrivilegeEscalation: false; unset, a process "
                      f"can gain more privileges than its parent (setuid binaries)"
                      f"{_misplaced(container, 'allowPrivilegeEscalation')}", _context_pointer(container),
                      container.name)


@check("privileged-container", "container")
def privileged_container(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if container.security_context.get("privileged") is True:
        yield Problem(f"container {container.name} runs privileged: it has every capability and all host devices",
                      f"{container.pointer}/securityContext/privileged", container.name)


@check("capabilities-not-dropped", "container")
def capabilities_not_dropped(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if _windows(container.pod):
        return
    capabilities = mapping(container.security_context.get("capabilities"))
    drop = sequence(capabilities.get("drop"))
    if "ALL" in drop:
        return
    variant = next((item for item in drop if isinstance(item, str) and item.upper() == "ALL"), None)
    if variant is not None:
        yield Problem(f"container {container.name} drops {variant!r}, but Pod Security admission recognises "
                      f"only the upper-case ALL",
                      f"{container.pointer}/securityContext/capabilities/drop", container.name)
        return
    pointer = f"{container.pointer}/securityContext/capabilities" if capabilities else _context_pointer(container)
    yield Problem(f"container {container.name} does not drop ALL capabilities; it keeps the runtime's defaults "
                  f"(NET_RAW, CHOWN, SETUID, ...){_misplaced(container, 'capabilities')}", pointer, container.name)


@check("capabilities-added", "container", allowed=["NET_BIND_SERVICE"])
def capabilities_added(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if _windows(container.pod):
        return
    allowed = set(ctx.params["allowed"])
    added = mapping(container.security_context.get("capabilities")).get("add")
    for index, capability in enumerate(sequence(added)):
        if isinstance(capability, str) and capability not in allowed:
            what = "every capability (ALL)" if capability.upper() == "ALL" else f"capability {capability}"
            yield Problem(f"container {container.name} adds {what}; only {', '.join(sorted(allowed))} may be added",
                          f"{container.pointer}/securityContext/capabilities/add/{index}", container.name)


@check("root-filesystem-writable", "container")
def root_filesystem_writable(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    value = container.security_context.get("readOnlyRootFilesystem")
    if value is True:
        return
    if value is False:
        yield Problem(f"container {container.name} sets readOnlyRootFilesystem: false",
                      f"{container.pointer}/securityContext/readOnlyRootFilesystem", container.name)
    else:
        yield Problem(f"container {container.name} does not set readOnlyRootFilesystem: true"
                      f"{_misplaced(container, 'readOnlyRootFilesystem')}", _context_pointer(container),
                      container.name)


@check("seccomp-profile", "container")
def seccomp_profile(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if _windows(container.pod):
        return
    profile, pointer, level = effective(container, "seccompProfile", _is_profile)
    if profile is not None and profile["type"] in SECCOMP_CONFINED:
        return
    if profile is not None:
        yield Problem(f"container {container.name} runs with seccomp profile {profile['type']} (from its {level} "
                      f"securityContext); use RuntimeDefault or Localhost", f"{pointer}/type", container.name)
        return
    annotations = mapping(container.pod.metadata.get("annotations"))
    hint = " (seccomp annotations have no effect since Kubernetes 1.27)" \
        if any(str(key).startswith(_SECCOMP_ANNOTATIONS) for key in annotations) else ""
    yield Problem(f"container {container.name} has no seccomp profile: neither it nor the pod sets "
                  f"securityContext.seccompProfile.type RuntimeDefault or Localhost{hint}",
                  _context_pointer(container), container.name)


@check("host-namespace", "pod", field="hostNetwork")
def host_namespace(pods: PodView, ctx: CheckContext) -> Iterator[Problem]:
    field = ctx.params["field"]
    if pods.spec.get(field) is True:
        shared = {"hostNetwork": "network", "hostPID": "process", "hostIPC": "IPC"}.get(field, field)
        yield Problem(f"the pod shares the node's {shared} namespace ({field}: true)", f"{pods.pointer}/{field}")


@check("host-path-volume", "pod")
def host_path_volume(pods: PodView, ctx: CheckContext) -> Iterator[Problem]:
    for index, volume in enumerate(sequence(pods.spec.get("volumes"))):
        volume = mapping(volume)
        host_path = volume.get("hostPath")
        if isinstance(host_path, dict):
            path = host_path.get("path")
            where = f" {path}" if isinstance(path, str) else ""
            yield Problem(f"volume {volume.get('name', index)} mounts the node's filesystem (hostPath{where})",
                          f"{pods.pointer}/volumes/{index}/hostPath")


@check("host-port", "container")
def host_port(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    for index, port in enumerate(sequence(container.raw.get("ports"))):
        number = integer(mapping(port).get("hostPort"))
        if number:
            yield Problem(f"container {container.name} binds port {number} on the node (hostPort)",
                          f"{container.pointer}/ports/{index}/hostPort", container.name)


@per_inventory
def bound_service_accounts(inventory: Inventory) -> set[tuple[str | None, str]]:
    """(namespace, name) of every ServiceAccount a RoleBinding or ClusterRoleBinding of the run names."""
    bound: set[tuple[str | None, str]] = set()
    for binding in (*inventory.kind("RoleBinding"), *inventory.kind("ClusterRoleBinding")):
        for subject in sequence(binding.raw.get("subjects")):
            subject = mapping(subject)
            name, kind = subject.get("name"), subject.get("kind")
            if not isinstance(name, str):
                continue
            if kind == "ServiceAccount":
                namespace = subject.get("namespace") if isinstance(subject.get("namespace"), str) \
                    else binding.namespace
                bound.add((namespace, name))
            elif kind == "User" and name.startswith("system:serviceaccount:") and name.count(":") == 3:
                _, _, namespace, account = name.split(":")
                bound.add((namespace, account))
    return bound


def _account_pointer(pods: PodView) -> str:
    for key in ("automountServiceAccountToken", "serviceAccountName", "serviceAccount"):
        if key in pods.spec:
            return f"{pods.pointer}/{key}"
    return pods.pointer


@check("service-account-token-mounted", "pod")
def service_account_token_mounted(pods: PodView, ctx: CheckContext) -> Iterator[Problem]:
    pod_setting = pods.spec.get("automountServiceAccountToken")
    if pod_setting is False:
        return
    namespace = pods.resource.namespace
    name = pods.service_account
    if name is None:
        return
    if (namespace, name) in bound_service_accounts(ctx.inventory):
        return
    account = ctx.inventory.get("ServiceAccount", namespace, name)
    if pod_setting is None and account is not None and account.raw.get("automountServiceAccountToken") is False:
        return
    if pod_setting is True and ctx.mode == "live":
        # The live mode reads no RBAC objects, so an explicit opt-in cannot be checked against a binding.
        return
    if pod_setting is True:
        why = "the pod sets automountServiceAccountToken: true"
    elif account is not None and account.raw.get("automountServiceAccountToken") is True:
        why = "the ServiceAccount sets automountServiceAccountToken: true"
    else:
        why = "neither the pod nor the ServiceAccount sets automountServiceAccountToken: false"
    unused = "no RoleBinding or ClusterRoleBinding in the scan grants it any access"
    yield Problem(f"the pod mounts the API token of ServiceAccount {name} ({why}), but {unused}; "
                  f"an attacker in the pod gets a credential it does not need",
                  _account_pointer(pods),
                  related=[ObjectRef.of(account)] if account is not None else [])


@check("namespace-pod-security", "object", levels=["baseline", "restricted"],
       exempt=["kube-system", "kube-public", "kube-node-lease"])
def namespace_pod_security(namespace: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if namespace.name in ctx.params["exempt"]:
        return
    level = namespace.labels.get(PSS_ENFORCE_LABEL)
    accepted = " or ".join(ctx.params["levels"])
    if level in ctx.params["levels"]:
        return
    if level is None:
        pointer = "/metadata/labels" if isinstance(namespace.metadata.get("labels"), dict) else "/metadata"
        yield Problem(f"namespace {namespace.name} has no {PSS_ENFORCE_LABEL} label: Pod Security admission "
                      f"admits any pod into it; label it {accepted}", pointer)
    else:
        yield Problem(f"namespace {namespace.name} enforces Pod Security level {level!r}, not {accepted}",
                      f"/metadata/labels/{escape_pointer_part(PSS_ENFORCE_LABEL)}")
