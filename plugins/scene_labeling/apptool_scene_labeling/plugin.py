"""Entry point of the scene-labeling plugin (group ``apptool``); imports no torch."""

import apptool
from apptool_scene_labeling.task import SceneLabelingTask

APPTOOL_API = 1


@apptool.hookimpl
def apptool_tasks():
    return [SceneLabelingTask()]
