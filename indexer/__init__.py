"""The write side: read input files, embed papers, and store them in an index directory."""

import models  # noqa: F401,E402  (sets OpenMP's wait policy before FAISS loads)
