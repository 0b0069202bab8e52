"""A self-signed CA and a serving certificate for the webhook (tests and local development).

In a cluster, prefer cert-manager (``assay admission manifests --cert-manager``); this exists so
``assay admission serve`` can be tried and tested without one. ECDSA P-256, CA valid 1 year,
serving certificate 90 days; the private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from assay._atomic import atomic_write_bytes
from assay.errors import UsageError

__all__ = ["CertFiles", "service_dns_names", "write_certs"]


@dataclass(frozen=True)
class CertFiles:
    ca_cert: Path
    cert: Path
    key: Path


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use for a Service: ``svc``, ``svc.ns``, ``svc.ns.svc``…"""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_certs(
    directory: Path,
    names: Sequence[str],
    *,
    now: dt.datetime | None = None,
    force: bool = False,
) -> CertFiles:
    """Write ``ca.crt``, ``tls.crt`` and ``tls.key`` into ``directory`` for ``names``.

    Each name that parses as an IP address becomes an IP SAN, the rest DNS SANs.
    """
    if not names:
        raise UsageError("no names for the serving certificate; pass --dns NAME (or an IP)")
    files = CertFiles(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    for p in (files.ca_cert, files.cert, files.key):
        if p.exists() and not force:
            raise UsageError(f"{p} already exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "assay admission CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    atomic_write_bytes(files.key, _key_pem(key), mode=0o600)
    atomic_write_bytes(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    atomic_write_bytes(files.ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    return files
