"""The shared bottom layer: what every pillar (properties, potentials, active learning) needs."""
