"""ONNX Runtime inference for bundles: what a deployment needs, without torch.

Providers are tried in the order TensorRT → CUDA → CPU, keeping those the
installed build offers; the provider a session really got is read back from
``session.get_providers()`` (onnxruntime-gpu lists CUDA even on a machine
without a GPU, then silently runs on the CPU).
"""

from __future__ import annotations

import ctypes
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apptool.errors import BundleError

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
METADATA_KEY = "apptool.config"
#: float32 graphs stay float32 on the GPU: CUDA's default TF32 math would break the 1e-4 torch parity
#: the export checked (the fp16 variant is the fast path)
PROVIDER_OPTIONS = {"CUDAExecutionProvider": {"use_tf32": "0"}}


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BundleError("ONNX Runtime is not installed: pip install 'apptool[cpu]' or 'apptool[gpu]'") from exc
    return onnxruntime


#: The shared library each GPU provider needs at run time: a GPU build lists these
#: providers even where the driver or TensorRT is absent, then prints errors and falls back.
PROVIDER_LIBRARIES = {
    "CUDAExecutionProvider": ("libcuda.so.1", "nvcuda.dll"),
    "TensorrtExecutionProvider": ("libnvinfer.so.10", "libnvinfer.so", "nvinfer.dll", "nvinfer_10.dll"),
}


@functools.cache
def _library_loads(provider: str) -> bool:
    for name in PROVIDER_LIBRARIES.get(provider, ()):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return provider not in PROVIDER_LIBRARIES


def candidate_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The preferred providers this build offers and this machine can load, best first (CPU always last)."""
    available = set(_ort().get_available_providers())
    order = requested or PREFERRED_PROVIDERS
    chosen = [p for p in order if p in available and (p == "CPUExecutionProvider" or _library_loads(p))]
    if "CUDAExecutionProvider" not in chosen:  # TensorRT runs on top of CUDA
        chosen = [p for p in chosen if p != "TensorrtExecutionProvider"]
    return chosen if "CPUExecutionProvider" in chosen else chosen + ["CPUExecutionProvider"]


def open_session(path: Path, providers: Sequence[str] | None = None, threads: int = 0):
    """An InferenceSession over the best providers that really load.

    Every graph optimisation (constant folding, fusions, layout changes) on; the
    nodes run one after another, each on ``threads`` intra-op threads (0: one per
    physical core, ONNX Runtime's default), so a count given here is the count used.
    """
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # a GPU build on a CPU machine would warn about every provider it skips
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        chosen = [(p, PROVIDER_OPTIONS.get(p, {})) for p in candidate_providers(providers)]
        return ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    except Exception as exc:
        raise BundleError(f"{path}: ONNX Runtime cannot load this model: {exc}") from exc


def read_onnx_config(path: Path) -> dict[str, Any]:
    """The bundle config stored in an ONNX file's metadata_props."""
    return session_config(path, open_session(path, ["CPUExecutionProvider"]))


def session_config(path: Path, session) -> dict[str, Any]:
    """The config in a loaded ONNX file's metadata, or a BundleError naming the file."""
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise BundleError(f"{path}: not an apptool model (no {METADATA_KEY!r} in its metadata)")
    try:
        config = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: metadata {METADATA_KEY!r} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise BundleError(f"{path}: metadata {METADATA_KEY!r} must be a JSON object, got {type(config).__name__}")
    return config


class OnnxRunner:
    """Runs a bundle's ONNX graphs by name; the numpy-side Runner of the task contract."""

    def __init__(
        self,
        bundle_dir: Path,
        task_name: str,
        graphs: Sequence[str],
        providers: Sequence[str] | None = None,
        bundle_config: dict[str, Any] | None = None,
        threads: int = 0,
    ):
        """``bundle_config``: the bundle's config.json; each graph must come from its run.  ``threads``: see open_session."""
        from apptool.bundle import CONFIG, check_same_run

        self.sessions = {}
        self.output_names: dict[str, list[str]] = {}
        for graph in graphs:
            path = Path(bundle_dir) / f"{graph}.onnx"
            if not path.is_file():
                raise BundleError(f"{path}: missing; run `apptool export {bundle_dir}`")
            session = open_session(path, providers, threads)
            tagged = session_config(path, session)
            if tagged.get("task") != task_name:
                raise BundleError(f"{path}: this ONNX file is for task {tagged.get('task')!r}, not {task_name!r}")
            if bundle_config is not None:
                check_same_run(path, tagged.get("run_id"), Path(bundle_dir) / CONFIG, bundle_config.get("run_id"))
            self.sessions[graph] = session
            self.output_names[graph] = [o.name for o in session.get_outputs()]

    @property
    def provider(self) -> str:
        """The execution provider the first graph really runs on."""
        return next(iter(self.sessions.values())).get_providers()[0]

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names[graph]
        return dict(zip(names, self.sessions[graph].run(names, feeds)))


class Predictor:
    """A loaded bundle ready to predict: its task, config and an ONNX Runtime runner."""

    def __init__(self, bundle_dir: str | Path, providers: Sequence[str] | None = None, task=None):
        from apptool.bundle import load_config

        self.bundle_dir = Path(bundle_dir)
        self.config, self.task = load_config(self.bundle_dir, task)
        self.runner = OnnxRunner(self.bundle_dir, self.task.name, self.config["graphs"], providers, self.config)

    @property
    def provider(self) -> str:
        return self.runner.provider

    def predict(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        """JSON-ready predictions for raw items."""
        return self.task.predict(self.runner, list(items), self.config)
