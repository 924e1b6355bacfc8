"""apptool: classic deep-learning results as applications you can train, deploy and show."""

import pluggy

__version__ = "0.1.0"

#: The plugin API version this core implements.  A plugin module declares the
#: versions it supports as ``APPTOOL_API = 1`` (or a tuple of versions).
API_VERSION = 1

#: Decorator for plugin hook implementations: ``@apptool.hookimpl``.
hookimpl = pluggy.HookimplMarker("apptool")

__all__ = ["API_VERSION", "__version__", "hookimpl"]
