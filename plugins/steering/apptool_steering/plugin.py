"""Entry point of the steering plugin (group ``apptool``); imports no torch."""

import apptool
from apptool_steering.task import SteeringTask

APPTOOL_API = 1


@apptool.hookimpl
def apptool_tasks():
    return [SteeringTask()]
