"""The vocabulary shared by every layer: records, settings, errors and the embedder."""
