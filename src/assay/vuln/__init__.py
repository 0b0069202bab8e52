"""assay.vuln"""
