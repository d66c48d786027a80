"""Training of property models: configs and levels, the loop, metrics, plots, run folders."""
