"""``apptool hashing-search`` and ``apptool hashing-add``: query a bundle's database, or grow it, from the shell.

Both run the bundle's ONNX encoder (no torch) and work on the bundle's
``index.safetensors``; adding rewrites that file atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer

from apptool.errors import BundleError, InputError
from apptool.images import IMAGE_SUFFIXES, list_inputs, read_image
from apptool.runtime import Predictor
from apptool_dbn_hashing.data import prepare_image
from apptool_dbn_hashing.index import INDEX_FILE, HammingIndex


def _open(bundle: Path):
    predictor = Predictor(bundle)
    if predictor.task.name != "dbn_hashing":
        raise BundleError(f"{bundle}: a {predictor.task.name!r} bundle, not a dbn_hashing one")
    index, meta = HammingIndex.load(Path(bundle) / INDEX_FILE)
    return predictor, index, meta


def _read(inputs: list[Path]) -> list[tuple[Path, np.ndarray]]:
    files = list_inputs(inputs, IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no image files in {', '.join(map(str, inputs))}")
    return [(path, read_image(path)) for path in files]


def _codes(predictor, images: list[np.ndarray]) -> np.ndarray:
    rows = predictor.predict(images)
    return np.stack([np.frombuffer(bytes.fromhex(row["code"]), np.uint8) for row in rows])


def search(bundle: Path, inputs: list[Path], k: int, radius: int | None) -> list[dict[str, Any]]:
    """For each query image: its code and the database entries nearest to it (top-k, or all within ``radius``)."""
    predictor, index, meta = _open(bundle)
    classes = meta.get("classes", [])
    files = _read(inputs)
    codes = _codes(predictor, [image for _, image in files])
    found = index.radius_search(codes, radius) if radius is not None else list(zip(*index.search(codes, k)))
    results = []
    for (path, _), code, (dist, idx) in zip(files, codes, found):
        hits = [
            {
                "name": index.names[j],
                "distance": int(d),
                "code": index.codes[j].tobytes().hex(),
                "class": classes[index.labels[j]] if 0 <= index.labels[j] < len(classes) else None,
            }
            for d, j in zip(dist, idx)
        ]
        results.append({"query": str(path), "code": code.tobytes().hex(), "results": hits})
    return results


def add(bundle: Path, inputs: list[Path], label: str | None) -> dict[str, Any]:
    """Encode images and append them to the bundle's index; the class is ``label`` or each file's folder name."""
    predictor, index, meta = _open(bundle)
    classes = list(meta.get("classes", []))
    files = _read(inputs)
    data = predictor.config["data"]
    images = np.stack([prepare_image(image, data["image_size"], data["channels"], str(path)) for path, image in files])
    labels = []
    for path, _ in files:
        name = label or path.parent.name
        if name not in classes:
            classes.append(name)
        labels.append(classes.index(name))
    index.add(
        _codes(predictor, list(images)),
        np.array(labels),
        [str(path) for path, _ in files],
        images if index.images is not None else None,
    )
    index.save(Path(bundle) / INDEX_FILE, {**meta, "classes": classes})
    return {"added": len(files), "database": len(index), "classes": classes}


def register(app) -> None:
    """Add the two commands to the ``apptool`` typer app."""

    @app.command("hashing-search")
    def search_command(
        bundle: Path = typer.Argument(..., help="A dbn_hashing bundle."),
        inputs: list[Path] = typer.Argument(..., metavar="IMAGE...", help="Query images or folders."),
        k: int = typer.Option(10, "--k", help="How many nearest database entries."),
        radius: int | None = typer.Option(None, "--radius", help="Return everything within this Hamming distance instead."),
    ) -> None:
        """Nearest database images of each query by Hamming distance (JSON on stdout)."""
        print(json.dumps(search(bundle, inputs, k, radius), indent=2))

    @app.command("hashing-add")
    def add_command(
        bundle: Path = typer.Argument(..., help="A dbn_hashing bundle."),
        inputs: list[Path] = typer.Argument(..., metavar="IMAGE...", help="Images or folders to add to the database."),
        label: str | None = typer.Option(None, "--label", help="Their class (default: each file's folder name)."),
    ) -> None:
        """Encode images with the bundle's model and add them to its database index."""
        print(json.dumps(add(bundle, inputs, label), indent=2))
