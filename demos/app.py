"""The apptool demo hub as a Hugging Face Space (sdk: gradio, app_file: app.py).

The same hub as ``apptool demo --train-missing``: it comes up at once, and a
task without a bundle in ``bundles/`` trains its ``quick`` model in the
background, its tab showing the progress until the model is ready.  Settings
come from the environment, as a Space sets them:

- ``APPTOOL_BUNDLES``: the bundles folder (default: ``bundles/`` next to this file);
- ``APPTOOL_TRAIN_MISSING``: ``0`` serves only the bundles present (default ``1``);
- ``APPTOOL_PRESET``: the preset trained for missing bundles (default ``quick``);
- ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``: where to listen (a Space uses 0.0.0.0:7860).
"""

from __future__ import annotations

import os
from pathlib import Path

from apptool.background import BackgroundTrainer
from apptool.hub import build_hub, launch_options, serve
from apptool.plugins import get_plugins

BUNDLES = Path(os.environ.get("APPTOOL_BUNDLES", Path(__file__).resolve().parent / "bundles"))
TRAIN_MISSING = os.environ.get("APPTOOL_TRAIN_MISSING", "1") != "0"
PRESET = os.environ.get("APPTOOL_PRESET", "quick")

trainer = BackgroundTrainer.for_missing(BUNDLES, sorted(get_plugins().tasks), PRESET) if TRAIN_MISSING else None
demo = build_hub(BUNDLES, trainer=trainer)

if __name__ == "__main__":
    serve(
        demo,
        trainer,
        **launch_options(os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), int(os.environ.get("GRADIO_SERVER_PORT", "7860"))),
    )
