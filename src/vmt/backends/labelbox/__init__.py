"""Labelbox backend: a model run as the run's source of rows and the sink of its results.

Built on the ``labelbox`` SDK (>= 7, < 8), imported only when a client is built. Configured by
``LABELBOX_API_KEY`` and the optional ``VMT_LABELBOX_ENDPOINT``.
"""

from vmt.backends.labelbox.connection import LabelboxConnection, build_client
from vmt.backends.labelbox.sink import LabelboxSink
from vmt.backends.labelbox.source import LabelboxSource

__all__ = ["LabelboxConnection", "LabelboxSink", "LabelboxSource", "build_client"]
