"""The vocabulary shared by every layer: records, settings, errors and the embedder."""

import os

# FAISS (and torch) keep OpenMP pools whose idle threads busy-wait by default; on a few cores
# they steal time from the requests being served. The policy is read once, when the first of
# those libraries loads, so it is set here: `indexer` and `search` import this package first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
