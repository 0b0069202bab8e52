"""Files that replace what maintainer scripts would have done.

assay never runs ``preinst``/``postinst``; the effects a runtime needs are produced here, as
:class:`~assay.oci.entry.Entry` values with ``owner=""``:

* ``/etc/passwd``, ``/etc/group`` from :class:`Accounts` (default: the distroless set — root 0,
  nobody 65534, nonroot 65532 with home ``/home/nonroot`` 0700, shell ``/sbin/nologin``) and
  the home directories. No ``/etc/shadow``: like distroless, no account has a password and
  nothing in the image authenticates users.
* ``/tmp`` 1777 and ``/etc/nsswitch.conf`` (files for accounts, files+dns for hosts).
* ``/etc/os-release`` → ``../usr/lib/os-release`` when base-files is absent (when present, its
  own files are kept), from the lock's release information (:func:`os_release_for`): scanners
  (syft, grype, trivy, ``assay scan``) need it to know which distro's advisories apply.
* ``/var/lib/dpkg/status.d/<pkg>`` (the control stanza with ``Status: install ok installed``
  after ``Package:``) and ``/var/lib/dpkg/status.d/<pkg>.md5sums`` — the distroless package
  database that syft and trivy read.
* ``/etc/ssl/certs/ca-certificates.crt`` when ca-certificates is installed: the PEM files under
  ``usr/share/ca-certificates`` in byte-sorted order, each ending in a newline, which is what
  ``update-ca-certificates`` produces from a fresh ``/etc/ca-certificates.conf`` (written too).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from assay.debian.codenames import version_for
from assay.errors import UsageError
from assay.oci.entry import Entry, EntryType

__all__ = [
    "DEFAULT_ACCOUNTS",
    "Accounts",
    "Group",
    "OsRelease",
    "ReleaseLike",
    "User",
    "accounts_entries",
    "ca_bundle_entries",
    "md5sums_for",
    "nsswitch_entry",
    "os_release_entries",
    "os_release_for",
    "status_entries",
    "status_stanza",
    "tmp_entry",
]

NOLOGIN = "/sbin/nologin"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str = "/nonexistent"
    shell: str = NOLOGIN
    gecos: str = ""
    create_home: bool = True  # ignored for "/nonexistent"


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Accounts:
    """Users and groups of the image (the spec's ``accounts``)."""

    users: tuple[User, ...]
    groups: tuple[Group, ...]

    def __post_init__(self) -> None:
        for kind, items in (("user", self.users), ("group", self.groups)):
            names = [i.name for i in items]
            if len(set(names)) != len(names):
                raise UsageError(f"accounts: duplicate {kind} name in {names}")
            for item in items:
                if not item.name or any(c in item.name for c in ":\n/ "):
                    raise UsageError(f"accounts: invalid {kind} name {item.name!r}")
        for u in self.users:
            for value in (u.home, u.shell, u.gecos):
                if ":" in value or "\n" in value:
                    raise UsageError(f"accounts: user {u.name} has ':' or newline in a field")
            if not u.home.startswith("/") or ".." in u.home.split("/"):
                raise UsageError(f"accounts: user {u.name} home must be an absolute path")


DEFAULT_ACCOUNTS = Accounts(
    users=(
        User("root", 0, 0, "/root", gecos="root"),
        User("nobody", 65534, 65534, "/nonexistent", gecos="nobody"),
        User("nonroot", 65532, 65532, "/home/nonroot", gecos="nonroot"),
    ),
    groups=(
        Group("root", 0),
        Group("tty", 5),
        Group("staff", 50),
        Group("nobody", 65534),
        Group("nonroot", 65532),
    ),
)


def _file(path: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> Entry:
    return Entry(path, EntryType.FILE, mode, data=data, mtime=mtime)


def accounts_entries(accounts: Accounts, *, mtime: int = 0) -> list[Entry]:
    """``etc/passwd``, ``etc/group`` and each user's home directory (0700, owned by the user)."""
    passwd = "".join(
        f"{u.name}:x:{u.uid}:{u.gid}:{u.gecos}:{u.home}:{u.shell}\n" for u in accounts.users
    )
    group = "".join(f"{g.name}:x:{g.gid}:{','.join(g.members)}\n" for g in accounts.groups)
    out = [
        _file("etc/passwd", passwd.encode(), mtime=mtime),
        _file("etc/group", group.encode(), mtime=mtime),
    ]
    for u in accounts.users:
        if u.create_home and u.home not in ("/", "/nonexistent"):
            home = u.home.strip("/")
            out.append(Entry(home, EntryType.DIR, 0o700, uid=u.uid, gid=u.gid, mtime=mtime))
    return out


def tmp_entry(*, mtime: int = 0) -> Entry:
    return Entry("tmp", EntryType.DIR, 0o1777, mtime=mtime)


NSSWITCH = b"""\
# Name service switch configuration written by assay (no nscd, no LDAP, no NIS).
passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      files
services:       files
ethers:         files
rpc:            files
"""


def nsswitch_entry(*, mtime: int = 0) -> Entry:
    return _file("etc/nsswitch.conf", NSSWITCH, mtime=mtime)


class ReleaseLike(Protocol):
    """What os-release needs from a Release file (``ReleaseInfo``, a lock's release)."""

    @property
    def codename(self) -> str: ...

    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class OsRelease:
    codename: str
    version: str  # "12.8", "12" or "" (testing, sid)


_CODENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")
_SUITE_SUFFIXES = ("-security", "-updates", "-backports", "-proposed-updates")


def os_release_for(releases: Iterable[ReleaseLike]) -> OsRelease | None:
    """The distribution release an image's packages come from, from its Release files.

    The base suite (``bookworm``) wins over its ``-security``/``-updates`` companions; the
    version comes from the Release ``Version`` field, else from the codename (``bookworm`` is
    12). None when no Release names a codename.
    """
    base: list[OsRelease] = []
    for r in releases:
        codename = r.codename.strip()
        for suffix in _SUITE_SUFFIXES:
            codename = codename.removesuffix(suffix)
        if not _CODENAME.match(codename):
            continue
        version = r.version.strip() if r.codename.strip() == codename else ""
        base.append(OsRelease(codename, version))
    if not base:
        return None
    # a Release with a Version first, then the smallest codename: stable over input order
    best = min(base, key=lambda o: (not o.version, o.codename, o.version))
    return OsRelease(best.codename, best.version or version_for(best.codename))


def os_release_entries(release: ReleaseLike, *, mtime: int = 0) -> list[Entry]:
    """``usr/lib/os-release`` and the ``etc/os-release`` symlink, as base-files lays them out."""
    version_id = release.version.split(".")[0] if release.version else ""
    if not version_id.isdigit():
        version_id = ""
    codename = release.codename
    if codename and not _CODENAME.match(codename):
        raise UsageError(f"release codename {codename!r} cannot be written to /etc/os-release")
    lines = ['PRETTY_NAME="Debian GNU/Linux' + (f" {version_id}" if version_id else "")]
    lines[0] += f' ({codename})"' if codename else '"'
    lines.append('NAME="Debian GNU/Linux"')
    if version_id:
        lines.append(f'VERSION_ID="{version_id}"')
        lines.append(f'VERSION="{version_id}' + (f' ({codename})"' if codename else '"'))
    if codename:
        lines.append(f"VERSION_CODENAME={codename}")
    lines.append("ID=debian")
    return [
        _file("usr/lib/os-release", ("\n".join(lines) + "\n").encode(), mtime=mtime),
        Entry(
            "etc/os-release", EntryType.SYMLINK, 0o777, link="../usr/lib/os-release", mtime=mtime
        ),
    ]


def status_stanza(control_raw: bytes) -> bytes:
    """The control stanza with ``Status: install ok installed`` after the ``Package:`` line."""
    lines = control_raw.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n")
    lines = [ln for ln in lines if not ln.startswith(b"Status:")]
    out: list[bytes] = []
    inserted = False
    for line in lines:
        out.append(line)
        if not inserted and line.startswith(b"Package:"):
            out.append(b"Status: install ok installed")
            inserted = True
    if not inserted:
        out.insert(0, b"Status: install ok installed")
    return b"\n".join(out) + b"\n"


def md5sums_for(
    package_md5sums: bytes, present: Mapping[str, bytes], conffiles: Iterable[str] = ()
) -> bytes:
    """The ``<pkg>.md5sums`` file for the files of a package that are in the image.

    ``present`` maps the package's installed regular files (paths without leading ``/``) to
    their content. Lines of the package's own md5sums whose file is not in the image (excluded
    documentation) are dropped, so scanners never see files that do not exist. When the package
    ships no md5sums, they are computed (conffiles left out, as ``dh_md5sums`` does).
    """
    if package_md5sums.strip():
        out: list[bytes] = []
        for line in package_md5sums.splitlines():
            _digest, _, name = line.partition(b" ")
            rel = name.lstrip(b" *").decode("utf-8", "surrogateescape").lstrip("/")
            if rel in present:
                out.append(line.rstrip(b"\r") + b"\n")
        return b"".join(out)
    skip = {c.lstrip("/") for c in conffiles}
    return b"".join(
        f"{hashlib.md5(present[p]).hexdigest()}  {p}\n".encode("utf-8", "surrogateescape")
        for p in sorted(present)
        if p not in skip
    )


def status_entries(
    package: str, control_raw: bytes, md5sums: bytes, *, mtime: int = 0
) -> list[Entry]:
    base = f"var/lib/dpkg/status.d/{package}"
    out = [_file(base, status_stanza(control_raw), mtime=mtime)]
    if md5sums:
        out.append(_file(base + ".md5sums", md5sums, mtime=mtime))
    return out


CERTS_DIR = "usr/share/ca-certificates/"


def ca_bundle_entries(files: Mapping[str, bytes], *, mtime: int = 0) -> list[Entry]:
    """``etc/ssl/certs/ca-certificates.crt`` and ``etc/ca-certificates.conf``.

    ``files`` maps image paths to content; every ``*.crt`` under ``usr/share/ca-certificates``
    is enabled, as in a fresh install.
    """
    names = sorted(
        p[len(CERTS_DIR) :] for p in files if p.startswith(CERTS_DIR) and p.endswith(".crt")
    )
    bundle = bytearray()
    for name in names:
        pem = files[CERTS_DIR + name]
        bundle += pem
        if pem and not pem.endswith(b"\n"):
            bundle += b"\n"
    conf = (
        "# Written by assay: every certificate under /usr/share/ca-certificates is enabled,\n"
        "# as in a fresh install. The bundle was built without running update-ca-certificates.\n"
        + "".join(n + "\n" for n in names)
    )
    return [
        _file("etc/ssl/certs/ca-certificates.crt", bytes(bundle), mtime=mtime),
        _file("etc/ca-certificates.conf", conf.encode(), mtime=mtime),
    ]
