"""assay.debian"""
