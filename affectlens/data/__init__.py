"""Datasets, splits and inspection: everything between files on disk and training batches."""
