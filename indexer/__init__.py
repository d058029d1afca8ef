"""The write side: read input files, embed papers, and store them in an index directory."""
