"""``filmroll sandbox``: an offline Instagram Platform (Instagram API with Instagram Login).

A separate application: it imports nothing of filmroll's Instagram client, so each keeps the other honest.
Public pieces: :func:`create_app`, :class:`SandboxConfig`, :func:`running_sandbox`, :class:`SandboxControl`.
"""

from filmroll.sandbox.app import create_app
from filmroll.sandbox.client import SandboxControl, SandboxControlError
from filmroll.sandbox.server import RunningSandbox, running_sandbox
from filmroll.sandbox.state import SandboxConfig

__all__ = ["RunningSandbox", "SandboxConfig", "SandboxControl", "SandboxControlError", "create_app",
           "running_sandbox"]
