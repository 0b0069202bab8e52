"""assay.oci"""
