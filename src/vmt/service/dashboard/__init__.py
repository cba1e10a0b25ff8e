"""The dashboard: runs, one run, compare; served by the service app and by ``vmt ui``."""

from vmt.service.dashboard.actions import RunActions, RunnerActions
from vmt.service.dashboard.routes import install_dashboard

__all__ = ["RunActions", "RunnerActions", "install_dashboard"]
