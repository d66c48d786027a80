"""Datasets, splits and periodic graphs."""
