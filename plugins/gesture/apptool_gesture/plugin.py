"""Entry point of the ``gesture`` task (no torch import here: the predict path must run without it)."""

import apptool
from apptool_gesture.task import GestureTask

APPTOOL_API = 1


@apptool.hookimpl
def apptool_tasks():
    return [GestureTask()]
