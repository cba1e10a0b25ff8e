"""Stages, the runner that advances and resumes runs, and the SQLite run store."""
