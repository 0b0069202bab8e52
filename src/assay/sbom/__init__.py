"""assay.sbom"""
