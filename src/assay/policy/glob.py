"""Image globs with Sigstore policy-controller's semantics (``spec.images[].glob``).

The rules, as policy-controller applies them:

* a glob may only hold ``A-Z a-z 0-9 - _ : / * . @`` (``@`` for digest globs); anything else
  is an invalid glob;
* ``**`` matches any run of characters (``/`` included), ``*`` any run without ``/``;
  ``:`` is no separator, so ``repo:*`` matches every tag;
* the glob must match the whole name;
* the image is first normalised the way go-containerregistry names a reference: default registry
  ``index.docker.io``, ``library/`` for one-segment Docker Hub names, tag ``latest`` when neither
  tag nor digest is given, and a digest reference loses its tag (``repo@sha256:…``); when the
  normalised name does not match, the image as written is tried too;
* the bare globs ``*`` and ``*/*`` mean ``index.docker.io/library/*`` and ``index.docker.io/*/*``.
"""

from __future__ import annotations

import functools
import re

from assay.errors import UsageError

__all__ = ["InvalidGlob", "InvalidImage", "compile_glob", "glob_matches", "normalise_image"]

_VALID_GLOB = re.compile(r"[a-zA-Z0-9\-_:/*.@]+")
_DEFAULT_REGISTRY = "index.docker.io"
_REPO_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_REGISTRY = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]+)?|\[[0-9A-Fa-f:]+\](?::[0-9]+)?")


class InvalidGlob(UsageError):
    """A glob that policy-controller would reject."""


class InvalidImage(UsageError):
    """An image reference that cannot be parsed."""


@functools.lru_cache(maxsize=1024)
def compile_glob(glob: str) -> re.Pattern[str]:
    """The regular expression for ``glob``; raise InvalidGlob for characters outside the set."""
    if glob == "*/*":
        glob = "index.docker.io/*/*"
    elif glob == "*":
        glob = "index.docker.io/library/*"
    if not _VALID_GLOB.fullmatch(glob):
        raise InvalidGlob(f"invalid glob {glob!r}: only letters, digits and - _ : / * . @ allowed")
    pattern = glob.replace(".", r"\.").replace("**", "\x00").replace("*", "[^/]*")
    return re.compile(pattern.replace("\x00", ".*"), re.DOTALL)


@functools.lru_cache(maxsize=4096)
def normalise_image(image: str) -> str:
    """go-containerregistry's ``ParseReference(image, WeakValidation).Name()``."""
    if not image or len(image) > 4096:
        raise InvalidImage(f"invalid image reference {image[:80]!r}")
    rest, digest = image, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InvalidImage(f"invalid digest in image reference {image!r}")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidImage(f"invalid tag in image reference {image!r}")
    parts = rest.split("/", 1)
    if len(parts) == 1 or ("." not in parts[0] and ":" not in parts[0] and parts[0] != "localhost"):
        registry, repo = _DEFAULT_REGISTRY, rest
    else:
        registry, repo = parts
        if not _REGISTRY.fullmatch(registry):
            raise InvalidImage(f"invalid registry in image reference {image!r}")
        if registry == "docker.io":
            registry = _DEFAULT_REGISTRY
    if registry == _DEFAULT_REGISTRY and "/" not in repo:
        repo = "library/" + repo
    if not repo or not all(_REPO_COMPONENT.fullmatch(c) for c in repo.split("/")):
        raise InvalidImage(f"invalid repository in image reference {image!r}")
    name = f"{registry}/{repo}"
    if digest:
        return f"{name}@{digest}"
    return f"{name}:{tag or 'latest'}"


def glob_matches(glob: str, image: str) -> bool:
    """Whether ``image`` matches ``glob``; InvalidGlob/InvalidImage as policy-controller errors."""
    pattern = compile_glob(glob)
    name = normalise_image(image)
    if pattern.fullmatch(name):
        return True
    return name != image and pattern.fullmatch(image) is not None
