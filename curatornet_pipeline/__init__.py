"""CuratorNet, the visually-aware art recommender, as a Dagster asset graph stored in DuckDB."""

import os

# OpenMP threads that finish a parallel region spin (busy-wait) for the next one by default. Training
# alternates numpy batch assembly with many small torch ops, so torch's second thread spends most of a step
# spinning; on a 2-core machine whose cores are shared with anything else, the spinning steals the cores the
# work needs and training runs several times slower (benchmarks/bench_omp_wait_policy.py). PASSIVE makes
# idle threads sleep. libgomp (torch's and scikit-learn's) reads this once when it loads, so it is set here,
# before any torch import; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
