"""Vertex AI custom training: our container trains (CustomJob), serves and batch-predicts."""
