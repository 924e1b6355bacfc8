from apptool.testing import TaskConformance


class TestConformance(TaskConformance):
    task_name = "dbn_hashing"
