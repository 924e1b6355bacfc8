"""Entry point of the image-classification plugin (group ``apptool``); imports no torch."""

import apptool
from apptool_image_classification.task import ImageClassificationTask

APPTOOL_API = 1


@apptool.hookimpl
def apptool_tasks():
    return [ImageClassificationTask()]
