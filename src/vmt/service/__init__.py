"""The web service Labelbox's "Train model" button calls (``vmt serve``).

``create_app(settings, runner=...)`` in :mod:`vmt.service.app`; importing this package does not
import FastAPI.
"""
