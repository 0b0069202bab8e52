"""assay.build"""
