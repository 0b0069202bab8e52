"""Which compliance controls each built-in check serves (data, not code).

Identifiers name the published documents: NIST SP 800-190 §4.1 image countermeasures
(4.1.1 vulnerabilities, 4.1.2 configuration defects, 4.1.5 untrusted images); CIS Docker
Benchmark §4 (4.1 container user, 4.3 unnecessary packages, 4.4 scan and rebuild, 4.5 content
trust, 4.8 setuid/setgid); NIST SP 800-218 SSDF (PS.2.1 integrity verification, PS.3.2 provenance
and SBOM, RV.1.1 vulnerability information, RV.2.1 risk analysis); NIST SP 800-53 as baselined by
FedRAMP (RA-5 vulnerability scanning, RA-5(2) updating what is scanned for, SI-2 flaw
remediation, CM-7 least functionality); CISA BOD 22-01 (KEV); SLSA v1.0 build track; PCI DSS
v4.0 (6.3.3 critical patches, 11.3.1 internal scans) and the PCI SSC container guidance
(13.4, trusted images). A policy's ``require.controls`` can add ids for a check.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["AUTHORITY_CONTROLS", "CHECK_CONTROLS"]

CHECK_CONTROLS = MappingProxyType(
    {
        "runAsNonRoot": ("CIS-Docker:4.1", "NIST-800-190:4.1.2", "FedRAMP:CM-7"),
        "noShell": ("CIS-Docker:4.3", "NIST-800-190:4.1.2", "FedRAMP:CM-7"),
        "noPackageManager": ("CIS-Docker:4.3", "NIST-800-190:4.1.2", "FedRAMP:CM-7"),
        "vulnerabilities.maxSeverity": (
            "CIS-Docker:4.4",
            "NIST-800-190:4.1.1",
            "PCI-DSS-4.0:6.3.3",
            "FedRAMP:RA-5",
            "FedRAMP:SI-2",
            "SSDF:RV.1.1",
        ),
        "vulnerabilities.noKEV": ("CISA-BOD-22-01", "FedRAMP:RA-5", "NIST-800-190:4.1.1"),
        "vulnerabilities.vexApplied": ("SSDF:RV.2.1",),
        "vulnerabilities.maxScanAgeDays": ("FedRAMP:RA-5", "PCI-DSS-4.0:11.3.1"),
        "vulnerabilities.maxDbAgeDays": ("FedRAMP:RA-5(2)",),
        # the scan behind the checks above was run live on the verified layers
        "vulnerabilities.scan": ("FedRAMP:RA-5", "NIST-800-190:4.1.1", "SSDF:RV.1.1"),
        "sbom": ("SSDF:PS.3.2",),
        "provenance": ("SLSA:build-L2", "SSDF:PS.3.2"),
        "maxImageAgeDays": ("CIS-Docker:4.4", "NIST-800-190:4.1.1"),
        "setuid": ("CIS-Docker:4.8", "NIST-800-190:4.1.2"),
        # an independent rebuild reproduced the digest: integrity information for the release
        "reproducible": ("SSDF:PS.2.1",),
        "signatures": (
            "CIS-Docker:4.5",
            "NIST-800-190:4.1.5",
            "PCI-Containers:13.4",
            "SSDF:PS.2.1",
        ),
    }
)

#: What a passing signature/attestation authority shows.
AUTHORITY_CONTROLS = ("CIS-Docker:4.5", "NIST-800-190:4.1.5", "PCI-Containers:13.4")
