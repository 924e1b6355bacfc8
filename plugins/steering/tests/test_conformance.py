"""The core's contract suite on the steering task, plus its closed-loop drive demo."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from apptool.testing import TaskConformance


class TestConformance(TaskConformance):
    task_name = "steering"

    def test_demo_drive_writes_a_video_and_the_autonomy(self, task, bundle, tmp_path):
        from apptool_steering.demo import drive_video

        from apptool.demo_context import DemoContext
        from apptool.errors import InputError
        from apptool.runtime import Predictor

        ctx = DemoContext(Predictor(bundle, task=task), work_dir=tmp_path)
        video, summary = drive_video(ctx, 2)
        assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
        assert cv2.VideoCapture(video).get(cv2.CAP_PROP_FRAME_COUNT) == 20
        assert "Autonomy" in summary
        with pytest.raises(InputError):
            drive_video(ctx, 1e6)
