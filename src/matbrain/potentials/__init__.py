"""Interatomic potentials: data, MACE training and fine-tuning, calculators, relaxation."""
