from apptool.testing import TaskConformance


class TestConformance(TaskConformance):
    task_name = "image_classification"
