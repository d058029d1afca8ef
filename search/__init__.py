"""The read side: turn a query, a paper or a set of papers into ranked hits."""

import models  # noqa: F401,E402  (sets OpenMP's wait policy before FAISS loads)
