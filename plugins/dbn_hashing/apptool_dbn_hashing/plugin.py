"""Entry point of the dbn_hashing plugin (imports no torch)."""

import apptool
from apptool_dbn_hashing.commands import register
from apptool_dbn_hashing.task import DbnHashingTask

APPTOOL_API = 1


@apptool.hookimpl
def apptool_tasks():
    return [DbnHashingTask()]


@apptool.hookimpl
def apptool_cli_commands(app):
    register(app)
