"""ACE potentials with pacemaker: dataset export, input.yaml, live log parsing, early stopping."""
