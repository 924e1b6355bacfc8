"""The conformance suite passes for the plugin ``apptool new-plugin`` generates."""

import pytest

from apptool.testing import TaskConformance


class TestScaffoldConformance(TaskConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def task(cls, scaffold_task):
        return scaffold_task
