"""Atomistic simulation with any ASE calculator: relaxation (and MD)."""
