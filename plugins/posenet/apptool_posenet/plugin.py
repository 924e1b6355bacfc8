"""Entry point of the PoseNet plugin (group ``apptool``); imports no torch."""

import apptool
from apptool_posenet.task import PoseNetTask

APPTOOL_API = 1


@apptool.hookimpl
def apptool_tasks():
    return [PoseNetTask()]
