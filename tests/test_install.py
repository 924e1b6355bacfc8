"""A plugin made by `apptool new-plugin`, pip-installed (no editable install) into a fresh virtual
environment, runs every mode: the guide's shell commands, executed as written."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import cv2
import numpy as np
import pytest
from docs_blocks import shell_commands

from apptool.testing import connect_client, free_port

REPO = Path(__file__).resolve().parents[1]
OFFLINE = ["--no-index", "--no-build-isolation", "--quiet"]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new venv that borrows this one's third-party packages (torch, timm, ...) read-only, so the test
    needs no download, and gets apptool itself installed by pip from the source tree."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(
        subprocess.check_output(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # the venv's own old setuptools would shadow the borrowed one, which builds wheels without `wheel`
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "--quiet", "setuptools"], check=False)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", *OFFLINE, "--no-deps", str(REPO)], check=True, timeout=600
    )
    return venv


def as_run_here(command: str, venv: Path, port: int) -> list[str]:
    """The guide's command, with pip kept offline and the demo on a free port."""
    argv = shlex.split(command)
    if argv[0] == "pip":
        return [str(venv / "bin" / "python"), "-m", "pip", *argv[1:2], *OFFLINE, *argv[2:]]
    if argv[:2] == ["apptool", "demo"]:
        argv += ["--port", str(port)]
    return [str(venv / "bin" / argv[0]), *argv[1:]]


def test_the_guides_commands_in_a_fresh_venv(fresh_venv, tmp_path):
    from gradio_client import handle_file

    env = {**os.environ, "APPTOOL_PLUGINS": "rotation", "PYTHONPATH": ""}
    commands = shell_commands()
    assert commands[0].startswith("apptool new-plugin rotation")
    example = tmp_path / "digit.png"
    digit = np.full((64, 64, 3), 255, np.uint8)
    cv2.putText(digit, "7", (14, 54), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 6)
    cv2.imwrite(str(example), digit)
    port = free_port()
    outputs = {}
    for command in commands:
        argv = as_run_here(command, fresh_venv, port)
        if "demo" in argv:
            server = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                client = connect_client(f"http://127.0.0.1:{port}/")
                answer = client.predict(handle_file(str(example)), api_name="/rotation_predict")
                assert isinstance(answer, dict) and "label" in answer
            finally:
                server.terminate()
                server.wait(timeout=30)
            continue
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        outputs[command] = done.stdout
    assert "rotation" in outputs["apptool plugins"]
    assert '"accuracy"' in outputs["apptool eval bundles/rotation --json"]
    assert '"label"' in outputs["apptool predict bundles/rotation digit.png --json"]
    installed = subprocess.check_output(
        [str(fresh_venv / "bin" / "python"), "-m", "pip", "show", "-f", "apptool-rotation"], text=True
    )
    assert "Editable project location" not in installed


def requirement_closure(roots: list[str]) -> dict[str, object]:
    """Installed distributions that ``roots`` (requirement strings) need, transitively: what pip would install."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, object] = {}
    pending = [(Requirement(r), "") for r in roots]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            continue  # an optional requirement of a dependency that this environment does not have either
        extras = sorted(requirement.extras) or [""]
        for wanted in extras:
            if (name, wanted) in found:
                continue
            found[(name, wanted)] = dist
            pending += [(Requirement(r), wanted) for r in dist.requires or []]
    return {name: dist for (name, _), dist in found.items()}


def test_a_base_install_predicts_without_torch_timm_or_gradio(scaffold_root, scaffold_bundle, tmp_path):
    """The base dependencies (plus the ONNX Runtime build and the plugin's own) in a venv that has nothing
    else: `python -m apptool predict` works there, and torch, timm and gradio cannot even be imported."""
    from importlib.metadata import PackageNotFoundError, distribution

    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    try:
        distribution("onnxruntime-gpu")
        runtime = project["optional-dependencies"]["gpu"]
    except PackageNotFoundError:
        runtime = project["optional-dependencies"]["cpu"]
    plugin = tomllib.loads((scaffold_root / "pyproject.toml").read_text())["project"]["dependencies"]
    closure = requirement_closure([*project["dependencies"], *runtime, *(r for r in plugin if not r.startswith("apptool"))])
    assert not {"torch", "timm", "gradio", "torchvision"} & set(closure)
    site = tmp_path / "site"
    site.mkdir()
    for dist in closure.values():
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    venv = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.check_output(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    )
    Path(purelib.strip(), "base.pth").write_text(f"{site}\n{REPO}\n{scaffold_root}\n")
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for heavy in ("torch", "timm", "gradio"):
        assert subprocess.run([python, "-c", f"import {heavy}"], capture_output=True, env=env).returncode != 0, heavy
    image = tmp_path / "digit.png"
    cv2.imwrite(str(image), np.full((32, 32, 3), 200, np.uint8))
    done = subprocess.run(
        [python, "-m", "apptool", "predict", str(scaffold_bundle), str(image), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"provider"' in done.stdout
