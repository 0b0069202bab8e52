"""assay.attest"""
