"""The web service Labelbox's "Train model" button calls."""
