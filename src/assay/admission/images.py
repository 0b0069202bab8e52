"""Where the images of a Kubernetes object are, and what each image string means.

Pure functions over the ``object`` of an AdmissionReview: every container image of a Pod
(``containers``, ``initContainers``, ``ephemeralContainers``), every image volume
(``volumes[].image.reference``) and the same inside the pod template of a Deployment, ReplicaSet,
StatefulSet, DaemonSet, Job or CronJob (``spec.jobTemplate.spec.template``).

Each image is reported with the JSON Pointer (RFC 6901) of its string, so the mutating webhook can
replace exactly that string. Image strings are read as the kubelet reads them: a first component
without ``.`` or ``:`` (and not ``localhost``) means Docker Hub, one component means ``library/``,
no tag and no digest means ``:latest``. :func:`canonical_ref` returns that full form, parsed
through assay's one image-reference type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from assay.errors import InputError, UsageError
from assay.oci.reference import ImageRef, parse_image_ref

__all__ = [
    "POD_TEMPLATE_PATHS",
    "ImageSite",
    "canonical_ref",
    "extract_images",
    "is_digest_ref",
    "pin_digest",
    "pod_spec",
    "ref_text",
]

SiteKind = Literal["container", "initContainer", "ephemeralContainer", "imageVolume"]

# Where the pod spec lives, by object kind (API group, kind).
POD_TEMPLATE_PATHS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}

_CONTAINER_LISTS: tuple[tuple[str, SiteKind], ...] = (
    ("initContainers", "initContainer"),
    ("containers", "container"),
    ("ephemeralContainers", "ephemeralContainer"),
)

MAX_IMAGE_LEN = 4096  # an image string is a few hundred characters; refuse absurd ones
MAX_SITES = 1024  # the API server caps a Pod far lower in practice


@dataclass(frozen=True)
class ImageSite:
    """One image string in an object: where it is (a JSON Pointer) and what it says."""

    pointer: str  # e.g. /spec/template/spec/containers/0/image
    image: str  # the string exactly as written in the object
    kind: SiteKind
    name: str  # the container or volume name ("" when absent)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _type_error(where: str, want: str, got: object) -> InputError:
    return InputError(
        f"AdmissionReview object: {where} must be {want}, got {type(got).__name__}; "
        "is this a Kubernetes object the API server sent?"
    )


def _pod_spec(obj: Mapping[str, Any], path: tuple[str, ...]) -> tuple[Mapping[str, Any], str]:
    node: Any = obj
    walked = ""
    for key in path:
        if not isinstance(node, Mapping):
            raise _type_error(walked or "object", "an object", node)
        node = node.get(key)
        walked += "/" + _escape(key)
        if node is None:
            return {}, walked
    if not isinstance(node, Mapping):
        raise _type_error(walked, "an object", node)
    return node, walked


def pod_spec(group: str, kind: str, obj: object) -> Mapping[str, Any]:
    """The pod spec inside ``obj`` (``{}`` for kinds without one or when absent)."""
    path = POD_TEMPLATE_PATHS.get((group, kind))
    if path is None or not isinstance(obj, Mapping):
        return {}
    return _pod_spec(obj, path)[0]


def _image_string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _type_error(where, "a string", value)
    if len(value) > MAX_IMAGE_LEN:
        raise InputError(f"AdmissionReview object: {where} is longer than {MAX_IMAGE_LEN} chars")
    return value


def extract_images(group: str, kind: str, obj: object) -> tuple[ImageSite, ...]:
    """Every image in ``obj`` (an object of ``group``/``kind``), in document order.

    An object kind that carries no pod spec gives ``()``. Raises ``InputError`` when the object
    does not have the shape the API server would send (a list that is not a list, an image that
    is not a string, …).
    """
    path = POD_TEMPLATE_PATHS.get((group, kind))
    if path is None:
        return ()
    if not isinstance(obj, Mapping):
        raise _type_error("object", "an object", obj)
    spec, base = _pod_spec(obj, path)
    sites: list[ImageSite] = []
    for field, site_kind in _CONTAINER_LISTS:
        items = spec.get(field)
        if items is None:
            continue
        if not isinstance(items, list):
            raise _type_error(f"{base}/{field}", "a list", items)
        for i, c in enumerate(items):
            where = f"{base}/{field}/{i}"
            if not isinstance(c, Mapping):
                raise _type_error(where, "an object", c)
            if "image" not in c:
                continue  # the API server refuses this; nothing to verify here
            name = c.get("name", "")
            sites.append(
                ImageSite(
                    f"{where}/image",
                    _image_string(c["image"], f"{where}/image"),
                    site_kind,
                    name if isinstance(name, str) else "",
                )
            )
    volumes = spec.get("volumes")
    if volumes is not None:
        if not isinstance(volumes, list):
            raise _type_error(f"{base}/volumes", "a list", volumes)
        for i, v in enumerate(volumes):
            where = f"{base}/volumes/{i}"
            if not isinstance(v, Mapping):
                raise _type_error(where, "an object", v)
            image = v.get("image")
            if image is None:
                continue
            if not isinstance(image, Mapping):
                raise _type_error(f"{where}/image", "an object", image)
            if "reference" not in image:
                continue
            name = v.get("name", "")
            sites.append(
                ImageSite(
                    f"{where}/image/reference",
                    _image_string(image["reference"], f"{where}/image/reference"),
                    "imageVolume",
                    name if isinstance(name, str) else "",
                )
            )
    if len(sites) > MAX_SITES:
        raise InputError(f"AdmissionReview object has more than {MAX_SITES} images; refusing it")
    return tuple(sites)


def canonical_ref(image: str) -> ImageRef:
    """The full registry reference the kubelet pulls for ``image`` (Docker Hub defaults applied).

    ``nginx`` → ``docker.io/library/nginx:latest``; ``busybox:1.36`` →
    ``docker.io/library/busybox:1.36``; ``registry.example:5000/a/b@sha256:…`` unchanged.
    Raises ``UsageError`` naming the image when it is not a valid reference.
    """
    if image.startswith("docker://") or not image:
        raise UsageError(f"invalid image reference {image!r}: not a Kubernetes image string")
    first, slash, _ = image.partition("/")
    host_part = first.partition("@")[0]
    if not slash or not ("." in host_part or ":" in host_part or host_part == "localhost"):
        # Docker Hub: one path component means the "library/" namespace.
        text = f"docker.io/{'library/' if not slash else ''}{image}"
    else:
        text = image
    ref = parse_image_ref("docker://" + text)
    if not ref.tag and not ref.digest:
        ref = ImageRef("docker", registry=ref.registry, repository=ref.repository, tag="latest")
    return ref


def is_digest_ref(image: str) -> bool:
    """Whether ``image`` pins a digest (``…@sha256:…``), with or without a tag."""
    try:
        return bool(canonical_ref(image).digest)
    except UsageError:
        return False


def ref_text(ref: ImageRef) -> str:
    """``HOST/REPO[:TAG][@DIGEST]`` without the ``docker://`` transport prefix."""
    return str(ref).removeprefix("docker://")


def pin_digest(image: str, digest: str) -> str:
    """``image`` as written, pinned to ``digest`` (``repo:tag`` → ``repo:tag@sha256:…``)."""
    return image if "@" in image else f"{image}@{digest}"
