"""Builders of test data (``make_*`` functions) shared by the test modules."""
