"""Active learning: the labelled-structure store, oracles, MD sampling, selection, the loop."""
