"""Entry point of the captioning plugin: registers the task (no torch imported here)."""

import apptool
from apptool_captioning.task import CaptioningTask

APPTOOL_API = 1


@apptool.hookimpl
def apptool_tasks():
    return [CaptioningTask()]
