"""The ``matbrain`` command line: thin commands over the library."""

import os

# Two OpenBLAS threads made small linear algebra (ASE optimisers, GPAW on small cells) ~100x
# slower on 2-core machines. Set before numpy loads, here and in every worker process the
# commands spawn; a value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
