"""Image references in skopeo's transport syntax.

    oci:DIR[:TAG]                          an OCI image layout directory
    oci-archive:FILE[:TAG]                 a tar of an OCI image layout
    docker-archive:FILE[:NAME:TAG|:@N]     a ``docker save`` tarball
    dir:PATH                               a directory (for ``assay sbom``: a root filesystem)
    docker://HOST/REPO[:TAG][@DIGEST]      a registry
    HOST/REPO[:TAG][@DIGEST]               the same, without the prefix

A registry reference must name its registry host (``localhost:5000/app:1``); assay never assumes
a default registry, so ``python:3.11`` is an error rather than a silent download from somewhere.
As in skopeo, the path of ``oci:``/``oci-archive:`` ends at the first ``:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from assay.errors import InputError, UsageError
from assay.oci.digest import parse_digest

__all__ = ["ImageRef", "Transport", "parse_image_ref"]

Transport = Literal["oci", "oci-archive", "docker", "docker-archive", "dir"]

_PATH_TRANSPORTS: tuple[Transport, ...] = ("oci-archive", "oci", "docker-archive", "dir")
_UNSUPPORTED = ("containers-storage", "docker-daemon", "ostree", "sif", "tarball")

_HOST_RE = re.compile(
    r"^(?:localhost|\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$"
)
_REPO_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_OCI_TAG_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_OCI_TAG_RE = re.compile(rf"^{_OCI_TAG_COMPONENT}(?:/{_OCI_TAG_COMPONENT})*$")

_EXAMPLE = "localhost:5000/team/app:1.0"


@dataclass(frozen=True)
class ImageRef:
    transport: Transport
    path: str = ""
    tag: str = ""
    registry: str = ""
    repository: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``HOST/REPO`` for registry references."""
        return f"{self.registry}/{self.repository}" if self.registry else ""

    @property
    def is_registry(self) -> bool:
        return self.transport == "docker"

    def __str__(self) -> str:
        if self.transport == "docker":
            s = f"docker://{self.registry}/{self.repository}"
            if self.tag:
                s += f":{self.tag}"
            if self.digest:
                s += f"@{self.digest}"
            return s
        s = f"{self.transport}:{self.path}"
        return f"{s}:{self.tag}" if self.tag else s

    def with_digest(self, digest: str) -> ImageRef:
        """The same registry reference pinned to ``digest`` (tag kept for display)."""
        return ImageRef(
            self.transport,
            self.path,
            self.tag,
            self.registry,
            self.repository,
            parse_digest(digest),
        )


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"invalid image reference {text!r}: {why}")


def _parse_registry(text: str, rest: str) -> ImageRef:
    if not rest:
        raise _bad(
            text, f"empty registry reference; expected HOST/REPO[:TAG][@DIGEST], e.g. {_EXAMPLE}"
        )
    digest = ""
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        try:
            digest = parse_digest(digest)
        except InputError:
            raise _bad(
                text, "the part after '@' must be sha256: and 64 lowercase hex digits"
            ) from None
    host, slash, remainder = rest.partition("/")
    host_like = "." in host or ":" in host or host == "localhost" or host.startswith("[")
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    if not slash and ("." in hostname or hostname == "localhost") and _HOST_RE.fullmatch(host):
        raise _bad(text, f"no repository after the registry host {host!r}, e.g. {_EXAMPLE}")
    if not slash or not host_like:
        raise _bad(
            text,
            "no registry host; write the full reference, e.g. "
            f"{_EXAMPLE} (assay never assumes a default registry). "
            "For a local layout or archive use oci:DIR[:TAG] or oci-archive:FILE[:TAG]",
        )
    if not _HOST_RE.fullmatch(host):
        raise _bad(text, f"registry host {host!r} is not a valid host[:port]")
    tag = ""
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = remainder.rpartition(":")
        if not _TAG_RE.fullmatch(tag):
            raise _bad(text, f"tag {tag!r} must be 1-128 of letters, digits, '_', '.', '-'")
    else:
        repo = remainder
    if not repo or len(repo) > 255 or not _REPO_RE.fullmatch(repo):
        raise _bad(
            text,
            f"repository {repo!r} must be lowercase path components of letters and digits "
            "separated by '.', '_', '__' or '-'",
        )
    return ImageRef("docker", registry=host, repository=repo, tag=tag, digest=digest)


def parse_image_ref(text: str) -> ImageRef:
    """Parse an image reference (see the module docstring); ``UsageError`` when malformed."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError("empty image reference; expected e.g. oci:./out:TAG or " + _EXAMPLE)
    if text != text.strip() or any(c.isspace() for c in text):
        raise _bad(text, "contains whitespace")
    if text.startswith("docker://"):
        return _parse_registry(text, text[len("docker://") :])
    head, colon, rest = text.partition(":")
    if colon:
        for transport in _PATH_TRANSPORTS:
            if head == transport:
                return _parse_path_ref(text, transport, rest)
        if head == "docker":
            raise _bad(
                text, f"the registry transport is written docker://, e.g. docker://{_EXAMPLE}"
            )
        if head in _UNSUPPORTED:
            raise _bad(
                text,
                f"transport {head!r} is not supported; use oci:, oci-archive:, docker-archive:, "
                "dir: or docker://",
            )
    return _parse_registry(text, text)


def _parse_path_ref(text: str, transport: Transport, rest: str) -> ImageRef:
    if transport == "dir":
        if not rest:
            raise _bad(text, "dir: needs a path")
        return ImageRef("dir", path=rest)
    path, _, tag = rest.partition(":")
    if not path:
        raise _bad(text, f"{transport}: needs a path, e.g. {transport}:./out:latest")
    if transport == "docker-archive":
        # NAME:TAG of an image inside the archive (checked against its RepoTags later) or @N.
        if tag and any(c in tag for c in "\0\n"):
            raise _bad(text, "malformed image name inside the archive")
        if tag.startswith("@") and not (tag[1:].isascii() and tag[1:].isdigit() and len(tag) < 8):
            raise _bad(text, "@N must be the number of an image in the archive, e.g. @0")
        return ImageRef("docker-archive", path=path, tag=tag)
    if tag and (len(tag) > 255 or not _OCI_TAG_RE.fullmatch(tag)):
        raise _bad(
            text,
            f"tag {tag!r} is not a valid OCI layout tag (letters and digits joined by "
            "'.', '_', '-', ':', '@', '+' or '/'). Note that the path ends at the first ':'",
        )
    return ImageRef(transport, path=path, tag=tag)
