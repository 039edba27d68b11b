"""The resource model: a Kubernetes object, where it came from, and typed views of its pods."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from tbyte_policy.marked import MarkedDict, MarkedList

if TYPE_CHECKING:
    from tbyte_policy.findings import Rendered

# Kinds the API serves cluster-wide; any other kind takes a namespace, like kubectl assumes.
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass", "APIService",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "CSIDriver", "CSINode", "VolumeSnapshotClass",
    "ClusterSecretStore", "ClusterExternalSecret", "ClusterIssuer", "ClusterTriggerAuthentication",
    "ClusterAnalysisTemplate", "PodSecurityPolicy", "FlowSchema", "PriorityLevelConfiguration",
})

# kind -> JSON pointer of its pod template (metadata + spec), relative to the object.
POD_TEMPLATE_POINTERS = {
    "Deployment": "/spec/template",
    "StatefulSet": "/spec/template",
    "DaemonSet": "/spec/template",
    "ReplicaSet": "/spec/template",
    "Job": "/spec/template",
    "CronJob": "/spec/jobTemplate/spec/template",
    "Rollout": "/spec/template",
}
POD_BEARING_KINDS = frozenset({"Pod", *POD_TEMPLATE_POINTERS})
CONTAINER_LISTS = (("containers", "container"), ("initContainers", "init"), ("ephemeralContainers", "ephemeral"))


def ref_text(kind: str, namespace: str | None, name: str) -> str:
    """``Kind/namespace/name``, or ``Kind/name`` when cluster-scoped: how every output names an object."""
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


class Origin(Protocol):
    """Where a rendered object (Helm, kustomize) came from: positions in its source file for the fields of
    the object as rendered, whose own positions (``Resource.parsed_position``) count in the render output."""

    def position(self, resource: Resource, pointer: str) -> tuple[int | None, int | None]: ...

    def rendered(self, resource: Resource, pointer: str) -> Rendered: ...


class Source(NamedTuple):
    path: str | None
    line: int | None
    column: int | None = None
    helm_source: str | None = None
    pointer_prefix: str = ""  # "/items/3" when the object is an item of a kind: List
    origin: Origin | None = None  # rendered objects: path, line and column are in their source file


class Resource:
    """One object of the run. Equal only to itself: indexes and caches key on the object."""

    __slots__ = ("api_version", "kind", "name", "namespace", "raw", "source")

    def __init__(self, api_version: str, kind: str, name: str, namespace: str | None, raw: dict,
                 source: Source) -> None:
        self.api_version = api_version
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.raw = raw
        self.source = source

    def __repr__(self) -> str:
        return f"Resource({self.ref})"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def metadata(self) -> dict:
        return mapping(self.raw.get("metadata"))

    @property
    def labels(self) -> dict:
        return string_map(self.metadata.get("labels"))

    @property
    def annotations(self) -> dict:
        return string_map(self.metadata.get("annotations"))

    @property
    def spec(self) -> dict:
        return mapping(self.raw.get("spec"))

    @property
    def ref(self) -> str:
        return ref_text(self.kind, self.namespace, self.name)

    @property
    def local_ref(self) -> str:
        """``Kind/name``: how a message about objects of one namespace names this one."""
        return f"{self.kind}/{self.name}"

    @property
    def controller_owner(self) -> dict | None:
        return controller_owner(self.raw)

    @property
    def managed_by_workload(self) -> bool:
        """A pod, ReplicaSet or Job that a workload controller owns: judged through that workload."""
        return managed_by_workload(self.raw)

    def get(self, pointer: str) -> Any:
        return resolve(self.raw, pointer)

    def position(self, pointer: str) -> tuple[int | None, int | None]:
        """Line and column in ``source.path`` of the field at ``pointer``, or of its nearest parent present there."""
        origin = self.source.origin
        if origin is not None:
            return origin.position(self, pointer)
        return self.parsed_position(pointer)

    def parsed_position(self, pointer: str, start: tuple[int | None, int | None] | None = None,
                        ) -> tuple[int | None, int | None]:
        """Line and column of the field at ``pointer`` (or its nearest parent) in the text it was parsed from;
        ``start`` is where the object starts there (default: the source's line and column)."""
        line, column = start or (self.source.line, self.source.column)
        node: Any = self.raw
        for part in split_pointer(pointer):
            if isinstance(node, dict):
                if part not in node:
                    break
                found = node.key_position(part) if isinstance(node, MarkedDict) else None
                node = node[part]
            elif isinstance(node, list) and is_number_text(part) and int(part) < len(node):
                found = node.item_position(int(part)) if isinstance(node, MarkedList) else None
                node = node[int(part)]
            else:
                break
            if found:
                line, column = found
        return line, column


class ContainerView(NamedTuple):
    pod: PodView
    raw: dict
    role: str  # container | init | sidecar | ephemeral
    pointer: str

    @property
    def name(self) -> str:
        name = self.raw.get("name")
        return name if isinstance(name, str) else f"#{self.pointer.rsplit('/', 1)[-1]}"

    @property
    def security_context(self) -> dict:
        return mapping(self.raw.get("securityContext"))

    @property
    def resources(self) -> dict:
        return mapping(self.raw.get("resources"))

    @property
    def ports(self) -> list[dict]:
        return [port for port in sequence(self.raw.get("ports")) if isinstance(port, dict)]

    def declares_port(self, port: int | str) -> bool:
        return any(port in (entry.get("name"), entry.get("containerPort")) for entry in self.ports)


class PodView(NamedTuple):
    """The pod a resource runs: a Pod's own spec, or a controller's pod template."""

    resource: Resource
    pointer: str  # pointer of the pod spec, e.g. /spec/template/spec
    spec: dict
    metadata: dict
    template_holder: Resource | None = None  # the Deployment whose template an Argo Rollout's workloadRef borrows

    @property
    def labels(self) -> dict:
        return string_map(self.metadata.get("labels"))

    @property
    def security_context(self) -> dict:
        return mapping(self.spec.get("securityContext"))

    @property
    def service_account(self) -> str | None:
        """The ServiceAccount the pod runs as (serviceAccountName, else the deprecated serviceAccount, else
        default); None when the field has the wrong type, which the shape pass reports."""
        name = self.spec.get("serviceAccountName") or self.spec.get("serviceAccount") or "default"
        return name if isinstance(name, str) else None

    def containers(self, roles: frozenset[str] | None = None) -> Iterator[ContainerView]:
        for key, role in CONTAINER_LISTS:
            for index, raw in enumerate(sequence(self.spec.get(key))):
                if not isinstance(raw, dict):
                    continue
                actual = "sidecar" if role == "init" and raw.get("restartPolicy") == "Always" else role
                if roles is None or actual in roles:
                    yield ContainerView(self, raw, actual, f"{self.pointer}/{key}/{index}")

    def container_ports(self) -> list[dict]:
        return [port for container in self.containers(frozenset({"container", "sidecar"})) for port in container.ports]

    def exposes(self, port: int | str, protocol: str | None = None) -> bool:
        """Whether a (named or numbered) port is declared by a serving container of this pod."""
        for entry in self.container_ports():
            if port in (entry.get("name"), entry.get("containerPort")) \
                    and (protocol is None or entry.get("protocol", "TCP") == protocol):
                return True
        return False

    @property
    def volumes(self) -> list[dict]:
        return [volume for volume in sequence(self.spec.get("volumes")) if isinstance(volume, dict)]


def pod_view(resource: Resource, template_holder: Resource | None = None) -> PodView | None:
    """The pods ``resource`` runs: its own spec or pod template, or that of ``template_holder``
    (the Deployment an Argo Rollout's ``workloadRef`` points at)."""
    holder = template_holder or resource
    if holder.kind == "Pod":
        return PodView(resource, "/spec", holder.spec, holder.metadata)
    pointer = POD_TEMPLATE_POINTERS.get(holder.kind)
    template = resolve(holder.raw, pointer) if pointer else None
    if pointer is None or not isinstance(template, dict):
        return None
    return PodView(resource, pointer + "/spec", mapping(template.get("spec")), mapping(template.get("metadata")),
                   template_holder)


def controller_owner(raw: dict) -> dict | None:
    """The ownerReference of an object's controller, if it has one."""
    for owner in sequence(mapping(raw.get("metadata")).get("ownerReferences")):
        if isinstance(owner, dict) and owner.get("controller") is True:
            return owner
    return None


def managed_by_workload(raw: dict) -> bool:
    """Whether a workload controller owns the object (it is judged through that workload, not on its own)."""
    kind = (controller_owner(raw) or {}).get("kind")
    return isinstance(kind, str) and kind in POD_BEARING_KINDS


# --- typed access: a field of the wrong type reads as absent (the shape pass reports it) ---

def mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list:
    return value if isinstance(value, list) else []


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def string_map(value: Any) -> dict:
    if not isinstance(value, dict):
        return {}
    return {key: val for key, val in value.items() if isinstance(key, str) and isinstance(val, str)}


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_number_text(value: str) -> bool:
    """Whether ``value`` is digits 0-9 only, as Go's strconv.Atoi and the API's validation read a number in a
    string (str.isdigit also takes other scripts' digits and superscripts, which int() then refuses)."""
    return value.isascii() and value.isdigit()


def split_pointer(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.lstrip("/").split("/")]


def escape_pointer_part(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def resolve(root: Any, pointer: str) -> Any:
    node = root
    for part in split_pointer(pointer):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and is_number_text(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


class ObjectRef(NamedTuple):
    """Another object named by a finding: a resource of the run, or one that is only referenced."""

    kind: str
    name: str
    namespace: str | None = None
    path: str | None = None
    line: int | None = None

    @property
    def ref(self) -> str:
        return ref_text(self.kind, self.namespace, self.name)

    @classmethod
    def of(cls, resource: Resource, pointer: str = "") -> ObjectRef:
        line, _ = resource.position(pointer)
        return cls(resource.kind, resource.name, resource.namespace, resource.source.path, line)


class Problem(NamedTuple):
    """What a check reports; the engine turns it into a Finding."""

    message: str
    pointer: str = ""
    container: str | None = None
    related: Sequence[ObjectRef] = ()
    resource: Resource | ObjectRef | None = None  # when the finding belongs to another object than the one checked
