"""The conformance suite passes for the plugins ``apptool new-plugin`` generates, from every template."""

import importlib
import sys

import pytest

from apptool.testing import TaskConformance


def template_task(template: str, name: str, tmp_path_factory):
    """The task of a plugin made from ``template``, imported from its folder and registered in this process."""
    from apptool.plugins import get_plugins
    from apptool.scaffold import create_plugin

    plugins = get_plugins()
    if name not in plugins.tasks:
        root = create_plugin(name, tmp_path_factory.mktemp(template), template)
        sys.path.insert(0, str(root))
        plugins.register(importlib.import_module(f"apptool_{name}.plugin"), name, f"apptool-{name}", "0.1.0")
    return plugins.task(name)


class TestScaffoldConformance(TaskConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def task(cls, scaffold_task):
        return scaffold_task


class TestSequenceTemplateConformance(TaskConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def task(cls, tmp_path_factory):
        return template_task("sequence", "wave_demo", tmp_path_factory)


@pytest.mark.slow
class TestImageClassifierTemplateConformance(TaskConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def task(cls, tmp_path_factory):
        return template_task("image-classifier", "shape_demo", tmp_path_factory)


def test_an_unknown_template_is_refused(tmp_path):
    from apptool.errors import ConfigError
    from apptool.scaffold import create_plugin

    with pytest.raises(ConfigError, match="--template 'video'.*minimal, sequence, image-classifier"):
        create_plugin("x", tmp_path, "video")
    assert not list(tmp_path.iterdir())
