"""images: image references that do not say which build runs, and pull policies that break scheduling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.model import ContainerView, Problem


class ImageRef(NamedTuple):
    """``[registry[:port]/]repository[:tag][@digest]``, split as the container runtime reads it."""

    repository: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def default_pull_policy(self) -> str:
        # The API server's defaulting: only an image that means :latest is pulled on every start.
        return "Always" if self.digest is None and self.tag in (None, "latest") else "IfNotPresent"


def parse_image(reference: str) -> ImageRef:
    name, _, digest = reference.partition("@")
    # A colon after the last slash starts the tag; one before it belongs to a registry port (localhost:5000/app).
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    else:
        tag = None
    return ImageRef(name, tag or None, digest or None)


def _image(container: ContainerView) -> ImageRef | None:
    image = container.raw.get("image")
    return parse_image(image.strip()) if isinstance(image, str) and image.strip() else None


def _pull_policy(container: ContainerView, image: ImageRef) -> tuple[str, bool]:
    """(effective policy, whether the manifest sets it)."""
    policy = container.raw.get("imagePullPolicy")
    return (policy, True) if isinstance(policy, str) else (image.default_pull_policy, False)


@check("image-tag-mutable", "container")
def image_tag_mutable(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    image = _image(container)
    if image is None or image.pinned or image.tag not in (None, "latest"):
        return
    said = "has no tag, which means :latest" if image.tag is None else "uses the :latest tag"
    yield Problem(f"image {image.repository} of container {container.name} {said}: which build runs depends on "
                  f"when each node pulled it, and a rollback redeploys whatever :latest is now",
                  f"{container.pointer}/image", container.name)


@check("image-pull-policy-never", "container")
def image_pull_policy_never(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    if container.raw.get("imagePullPolicy") == "Never":
        yield Problem(f"container {container.name} has imagePullPolicy: Never: on a node that does not already hold "
                      f"the image the pod fails with ErrImageNeverPull", f"{container.pointer}/imagePullPolicy",
                      container.name)


@check("image-pull-policy-not-always", "container")
def image_pull_policy_not_always(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    image = _image(container)
    if image is None or image.pinned:
        return
    policy, explicit = _pull_policy(container, image)
    if policy == "Always":
        return
    how = f"sets imagePullPolicy: {policy}" if explicit else f"leaves imagePullPolicy unset (it defaults to {policy})"
    yield Problem(f"container {container.name} {how} for the mutable tag {image.repository}:{image.tag}: nodes "
                  f"that cached the tag keep running the old build, and the pull credentials are not re-checked",
                  f"{container.pointer}/imagePullPolicy" if explicit else f"{container.pointer}/image", container.name)


@check("image-not-pinned", "container")
def image_not_pinned(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    image = _image(container)
    if image is not None and not image.pinned:
        yield Problem(f"image {image.repository} of container {container.name} is not pinned by digest "
                      f"(@sha256:...): the tag can be moved to other content", f"{container.pointer}/image",
                      container.name)
