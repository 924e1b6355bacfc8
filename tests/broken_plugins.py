"""Plugins with failing hooks, as source text, for the plugin tests to write into a folder and load.

test_plugins.py installs them for an ``apptool`` subprocess; test_hooks.py loads
them into a fresh plugin manager in its own process.
"""

from __future__ import annotations

import textwrap

HOOK_TYPO = textwrap.dedent("""
    import apptool

    @apptool.hookimpl
    def apptool_backbone():
        return {"typo_net": {"model_name": "resnet10t"}}
""")
RAISING_EXTRAS = textwrap.dedent("""
    import apptool

    @apptool.hookimpl
    def apptool_backbones():
        raise RuntimeError("backbones exploded")

    @apptool.hookimpl
    def apptool_exporters():
        raise RuntimeError("exporters exploded")

    @apptool.hookimpl
    def apptool_dataset_readers():
        raise RuntimeError("readers exploded")
""")
