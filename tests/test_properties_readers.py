"""Property-based tests of every plugin's data readers: any mangled file is read correctly or refused clearly.

Each property writes a valid file in a reader's public format, then mangles it
the way real files go wrong: truncated or spliced bytes, swapped, dropped or
extra fields, NaN / inf / empty / absurd values, other encodings (latin-1,
UTF-16 with BOM, UTF-8 BOM), other line ends, image paths that climb out of
the data folder.  The reader must either return a result that passes the
format's own checks (every path inside the data folder, every value finite,
no row silently dropped) or raise an AppToolError whose message names the
file; another exception type, a hang or an accepted escape fails the test.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from apptool_captioning.readers import read_coco, read_flickr8k
from apptool_dbn_hashing.data import read_folder
from apptool_gesture.csvformat import read_csv_sequence
from apptool_gesture.tsformat import read_ts
from apptool_posenet.cambridge import read_pose_file
from apptool_scene_labeling.data import read_classes, read_data_dir, read_mask_png, read_regions
from apptool_steering.data import read_driving_log
from hypothesis import given
from hypothesis import strategies as st
from mutations import (
    ENCODINGS,
    SETTINGS,
    TOKENS,
    bom_crlf,
    decoded,
    inside,
    mangled_bytes,
    mangled_text,
    time_limit,
    write_messages,
)
from mutations import outcome as _outcome

from apptool.errors import DataError
from apptool.images import MAX_PIXELS


@pytest.fixture(scope="module", autouse=True)
def report_messages():
    yield
    write_messages()


def outcome(reader: str, call, named: str, root: Path | None = None):
    """A reader's result, or None after a DataError naming ``named``."""
    return _outcome(reader, call, named, root, DataError)


NUMBER = st.floats(-1000, 1000, allow_nan=False).map(lambda v: f"{v:.4g}")


# -- steering: Udacity driving_log.csv -----------------------------------------------------------
def udacity_split(root: Path) -> Path:
    split = root / "train"
    (split / "IMG").mkdir(parents=True)
    for cam in ("center", "left", "right"):
        for i in range(3):
            (split / "IMG" / f"{cam}_{i}.jpg").write_bytes(b"jpeg")
    (root.parent / "outside.jpg").write_bytes(b"outside the data folder")
    return split


@st.composite
def driving_logs(draw) -> tuple[str, tuple[str, ...]]:
    n = draw(st.integers(1, 3))
    style = draw(st.sampled_from(["IMG/{}", "C:\\Users\\driver\\sim\\IMG\\{}", "/Users/driver/data/IMG/{}", " IMG/{} "]))
    lines = ["center,left,right,steering,throttle,brake,speed"] if draw(st.booleans()) else []
    names = []
    for i in range(n):
        cams = [f"{cam}_{i}.jpg" for cam in ("center", "left", "right")]
        names += cams
        steering = draw(st.floats(-1, 1))
        lines.append(", ".join([*(style.format(c) for c in cams), f"{steering:.5f}", "0.5", "0", "30.19"]))
    return "\n".join(lines) + "\n", tuple(f"IMG/{c}" for c in names)


def csv_records(text: str) -> int:
    try:
        records = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
        return sum(1 for fields in records if any(f.strip() for f in fields))
    except csv.Error:
        return 0


def check_driving_log(rows, root: Path, text: str) -> None:
    assert rows and len(rows) >= csv_records(text) - 1, "a row was dropped without an error"
    for row in rows:
        assert math.isfinite(row.steering) and -1 <= row.steering <= 1, "a steering label outside [-1, 1] was accepted"
        for path in (row.center, row.left, row.right):
            if path is not None:
                assert path.is_file()
                assert inside(path, root) or str(path) in text, f"{path} is outside {root} and was not written absolute"


@SETTINGS
@given(driving_logs(), st.data())
def test_driving_log_mangled(tmp_path_factory, log, data):
    text, paths = log
    root = tmp_path_factory.mktemp("udacity") / "data"
    split = udacity_split(root)
    raw = data.draw(mangled_text(text, ",", paths))
    (split / "driving_log.csv").write_bytes(raw)
    rows = outcome("steering: driving_log.csv", lambda: read_driving_log(split, root), "driving_log.csv", root)
    if rows is not None:
        check_driving_log(rows, root, decoded(raw))


@SETTINGS
@given(driving_logs())
def test_driving_log_reads_the_same_with_bom_and_crlf(tmp_path_factory, log):
    text, _ = log
    root = tmp_path_factory.mktemp("udacity") / "data"
    split = udacity_split(root)
    (split / "driving_log.csv").write_text(text)
    plain = read_driving_log(split, root)
    (split / "driving_log.csv").write_bytes(bom_crlf(text))
    assert read_driving_log(split, root) == plain


def test_driving_log_huge_field_and_many_rows(tmp_path):
    root = tmp_path / "data"
    split = udacity_split(root)
    (split / "driving_log.csv").write_text("IMG/center_0.jpg, , , 0.1, 0, 0, 0\n" + "x" * 2_000_000 + ", , , 0.2\n")
    with time_limit(), pytest.raises(DataError, match=r"driving_log\.csv:2"):
        read_driving_log(split, root)
    (split / "driving_log.csv").write_text("IMG/center_0.jpg, IMG/left_0.jpg, IMG/right_0.jpg, 0.1, 0, 0, 0\n" * 20_000)
    with time_limit():
        assert len(read_driving_log(split, root)) == 20_000


@pytest.mark.parametrize("value", ["1.5", "-25", "1e3"])
def test_steering_outside_the_udacity_range_is_refused_not_clipped(tmp_path, value):
    split = udacity_split(tmp_path / "data")
    (split / "driving_log.csv").write_text(f"IMG/center_0.jpg, , , 0.5, 0, 0, 0\nIMG/center_1.jpg, , , {value}, 0, 0, 0\n")
    with pytest.raises(DataError, match=rf"driving_log\.csv:2: steering '{value}' is outside \[-1, 1\]; .*degrees / 25"):
        read_driving_log(split, tmp_path / "data")
    (split / "driving_log.csv").write_text("IMG/center_0.jpg, , , -1, 0, 0, 0\nIMG/center_1.jpg, , , 1.0, 0, 0, 0\n")
    assert [row.steering for row in read_driving_log(split, tmp_path / "data")] == [-1.0, 1.0]


# -- scene labeling: classes.txt, mask PNGs, images/masks layout, Stanford regions.txt -------------
NAME = st.from_regex(r"[a-z][a-z_ ]{0,8}[a-z]", fullmatch=True)


@st.composite
def class_lists(draw) -> str:
    names = draw(st.lists(NAME, min_size=1, max_size=6, unique=True))
    lines = ["# classes of my data set"] + [f"{n}  # {i}" if i % 2 else n for i, n in enumerate(names)]
    return "\n".join(lines) + "\n"


@SETTINGS
@given(class_lists(), st.data())
def test_classes_txt_mangled(tmp_path_factory, text, data):
    path = tmp_path_factory.mktemp("classes") / "classes.txt"
    raw = data.draw(mangled_text(text, "#"))
    path.write_bytes(raw)
    names = outcome("scene_labeling: classes.txt", lambda: read_classes(path), "classes.txt", path.parent)
    if names is not None:
        listed = [line.split("#", 1)[0].strip() for line in decoded(raw).splitlines()]
        assert names == [n for n in listed if n], "a class name was dropped or altered without an error"
        assert len(set(names)) == len(names) <= 255


@SETTINGS
@given(class_lists())
def test_classes_txt_reads_the_same_with_bom_and_crlf(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("classes") / "classes.txt"
    path.write_text(text)
    plain = read_classes(path)
    path.write_bytes(bom_crlf(text))
    assert read_classes(path) == plain


def encode_mask(mask: np.ndarray, kind: str) -> bytes:
    """A mask as PNG bytes: grey, 16-bit grey, palette, or grey-as-RGB."""
    if kind == "palette":
        from PIL import Image

        image = Image.fromarray(mask, "L").convert("P")
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()
    array = {"grey": mask, "grey16": mask.astype(np.uint16), "rgb": np.dstack([mask] * 3)}[kind]
    return cv2.imencode(".png", array)[1].tobytes()


@st.composite
def masks(draw) -> np.ndarray:
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    values = draw(st.lists(st.sampled_from([0, 1, 2, 255]), min_size=h * w, max_size=h * w))
    return np.array(values, np.uint8).reshape(h, w)


@SETTINGS
@given(masks(), st.sampled_from(["grey", "grey16", "palette", "rgb"]), st.data())
def test_mask_png_mangled(tmp_path_factory, mask, kind, data):
    path = tmp_path_factory.mktemp("mask") / "mask.png"
    raw = data.draw(mangled_bytes(encode_mask(mask, kind)))
    path.write_bytes(raw)
    array = outcome("scene_labeling: mask PNG", lambda: read_mask_png(path), "mask.png", path.parent)
    if array is not None:
        assert array.ndim == 2 and array.dtype.kind in "ui" and array.min(initial=0) >= 0 and array.size <= MAX_PIXELS


def png_header(width: int, height: int, pixels: bytes = b"") -> bytes:
    """A grey 8-bit PNG that declares ``width`` x ``height`` (with valid CRCs) and carries ``pixels`` zlib-compressed."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(pixels, 9)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (7_000, 7_000)])
def test_mask_png_bombs_are_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    rows = (b"\x00" * (width + 1)) * height if width * height < 10**8 else b"\x00" * 1000
    path.write_bytes(png_header(width, height, rows))
    with time_limit(), pytest.raises(DataError, match="bomb.png"):
        read_mask_png(path)


def write_images_masks(root: Path, rng: np.random.Generator) -> dict[str, Path]:
    """A 3-class images/masks data set; returns its files by role."""
    (root / "classes.txt").write_text("sky\nroad\ntree\n")
    files = {"classes": root / "classes.txt"}
    for split, stems in (("train", ("a", "b")), ("test", ("c",))):
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for stem in stems:
            image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            mask = rng.choice(np.array([0, 1, 2, 255], np.uint8), (6, 8))
            files[f"image {stem}"] = root / split / "images" / f"{stem}.png"
            files[f"mask {stem}"] = root / split / "masks" / f"{stem}.png"
            cv2.imwrite(str(files[f"image {stem}"]), image)
            cv2.imwrite(str(files[f"mask {stem}"]), mask)
    return files


@SETTINGS
@given(st.integers(0, 2**16), st.data())
def test_images_masks_layout_mangled(tmp_path_factory, seed, data):
    root = tmp_path_factory.mktemp("scenes")
    files = write_images_masks(root, np.random.default_rng(seed))
    op = data.draw(
        st.sampled_from(
            [
                "classes",
                "mask bytes",
                "image bytes",
                "mask array",
                "no mask",
                "orphan mask",
                "same stem",
                "stray files",
                "empty split",
            ]
        )
    )
    if op == "classes":
        files["classes"].write_bytes(data.draw(mangled_text(files["classes"].read_text(), "#")))
    elif op in ("mask bytes", "image bytes"):
        target = files[data.draw(st.sampled_from([k for k in files if k.startswith(op.split()[0])]))]
        target.write_bytes(data.draw(mangled_bytes(target.read_bytes())))
    elif op == "mask array":
        array = data.draw(
            st.sampled_from(
                [
                    np.full((6, 8), 3, np.uint8),
                    np.zeros((5, 8), np.uint8),
                    np.zeros((6, 8, 3), np.uint8) + np.uint8([0, 1, 2]),
                    np.zeros((1, 1), np.uint8),
                    np.full((6, 8), 254, np.uint8),
                    np.full((6, 8), 2, np.uint16) * 300,
                ]
            )
        )
        cv2.imwrite(str(files[data.draw(st.sampled_from(["mask a", "mask b", "mask c"]))]), array)
    elif op == "no mask":
        files[data.draw(st.sampled_from(["mask a", "mask b", "mask c"]))].unlink()
    elif op == "orphan mask":
        (root / "train" / "masks" / "zzz.png").write_bytes(files["mask a"].read_bytes())
    elif op == "same stem":
        (root / "train" / "images" / "a.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((6, 8, 3), np.uint8))[1].tobytes())
    elif op == "stray files":
        (root / "train" / "images" / "notes.txt").write_text("not an image")
        (root / "train" / "images" / "d.png").write_bytes(b"")
    elif op == "empty split":
        for path in (root / "test" / "images").iterdir():
            path.unlink()
    result = outcome("scene_labeling: images/masks layout", lambda: read_data_dir(root), str(root), root)
    if result is not None:
        classes, train, test, layout = result
        assert layout == "images-masks" and classes and train and test
        for image, mask, _ in train + test:
            assert image.dtype == np.uint8 and image.shape == (*mask.shape, 3)
            assert set(np.unique(mask).tolist()) <= {*range(len(classes)), 255}


@st.composite
def region_matrices(draw) -> tuple[str, tuple[int, int]]:
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    values = draw(st.lists(st.integers(-1, 7), min_size=h * w, max_size=h * w))
    rows = [" ".join(str(v) for v in values[r * w : (r + 1) * w]) for r in range(h)]
    return "\n".join(rows) + "\n", (h, w)


@SETTINGS
@given(region_matrices(), st.data())
def test_stanford_regions_mangled(tmp_path_factory, matrix, data):
    text, shape = matrix
    path = tmp_path_factory.mktemp("regions") / "0000047.regions.txt"
    path.write_bytes(data.draw(mangled_text(text, " ")))
    labels = outcome(
        "scene_labeling: Stanford regions.txt", lambda: read_regions(path, shape), "0000047.regions.txt", path.parent
    )
    if labels is not None:
        assert labels.shape == shape and labels.dtype == np.uint8
        assert set(np.unique(labels).tolist()) <= {*range(8), 255}


@SETTINGS
@given(region_matrices())
def test_stanford_regions_read_the_same_with_bom_and_crlf(tmp_path_factory, matrix):
    text, shape = matrix
    path = tmp_path_factory.mktemp("regions") / "0000047.regions.txt"
    path.write_text(text)
    plain = read_regions(path, shape)
    path.write_bytes(bom_crlf(text))
    assert np.array_equal(read_regions(path, shape), plain)


@SETTINGS
@given(st.integers(0, 2**16), st.data())
def test_stanford_layout_mangled(tmp_path_factory, seed, data):
    root = tmp_path_factory.mktemp("stanford")
    rng = np.random.default_rng(seed)
    (root / "images").mkdir()
    (root / "labels").mkdir()
    stems = [f"{i:07d}" for i in range(data.draw(st.integers(1, 4)))]
    for stem in stems:
        cv2.imwrite(str(root / "images" / f"{stem}.png"), rng.integers(0, 256, (3, 4, 3), dtype=np.uint8))
        labels = rng.integers(-1, 8, (3, 4))
        (root / "labels" / f"{stem}.regions.txt").write_text("\n".join(" ".join(map(str, row)) for row in labels) + "\n")
    stem = data.draw(st.sampled_from(stems))
    op = data.draw(st.sampled_from(["regions", "image", "no labels", "keep"]))
    if op == "regions":
        path = root / "labels" / f"{stem}.regions.txt"
        path.write_bytes(data.draw(mangled_text(path.read_text(), " ")))
    elif op == "image":
        path = root / "images" / f"{stem}.png"
        path.write_bytes(data.draw(mangled_bytes(path.read_bytes())))
    elif op == "no labels":
        (root / "labels" / f"{stem}.regions.txt").unlink()
    result = outcome("scene_labeling: Stanford layout", lambda: read_data_dir(root), str(root), root)
    if result is not None:
        classes, train, test, layout = result
        assert layout == "stanford-background" and train and test and len(train) + len(test) == len(stems)
        for image, mask, _ in train + test:
            assert image.shape == (*mask.shape, 3) and set(np.unique(mask).tolist()) <= {*range(len(classes)), 255}


# -- PoseNet: Cambridge Landmarks dataset_*.txt ------------------------------------------------------
HEADER = "Visual Landmark Dataset V1\nImageFile, Camera Position [X Y Z W P Q R]\n\n"


def cambridge_root(base: Path) -> Path:
    root = base / "data"
    (root / "seq1").mkdir(parents=True)
    for i in range(3):
        (root / "seq1" / f"frame0000{i}.png").write_bytes(b"png")
    (base / "outside.png").write_bytes(b"outside the data folder")
    return root


@st.composite
def pose_files(draw) -> tuple[str, tuple[str, ...]]:
    n = draw(st.integers(1, 3))
    names = tuple(f"seq1/frame0000{i}.png" for i in range(n))
    rotation = st.floats(-1, 1).map(lambda v: f"{v:.4g}")  # W is drawn in [0.1, 1]: the norm stays near 1, as the reader requires
    position, quaternion = st.lists(NUMBER, min_size=3, max_size=3), st.lists(rotation, min_size=3, max_size=3)
    rows = [" ".join([name, *draw(position), f"{draw(st.floats(0.1, 1)):.5f}", *draw(quaternion)]) for name in names]
    header = HEADER if draw(st.booleans()) else ""
    return header + "\n".join(rows) + "\n", names


@SETTINGS
@given(pose_files(), st.data())
def test_cambridge_pose_file_mangled(tmp_path_factory, pose_file, data):
    text, names = pose_file
    root = cambridge_root(tmp_path_factory.mktemp("cambridge"))
    raw = data.draw(mangled_text(text, " ", names))
    (root / "dataset_train.txt").write_bytes(raw)
    found = outcome("posenet: dataset_train.txt", lambda: read_pose_file(root, "dataset_train.txt"), "dataset_train.txt", root)
    if found is not None:
        lines = [line for line in decoded(raw).splitlines() if line.strip()]
        assert len(found.paths) == len(found.poses) == len(found.sources) >= len(lines) - 3
        assert all(inside(p, root) and p.is_file() for p in found.paths), "an image path outside the data folder was accepted"
        assert np.isfinite(found.poses).all()
        assert np.allclose(np.linalg.norm(found.poses[:, 3:], axis=1), 1) and (found.poses[:, 3] >= 0).all()


@SETTINGS
@given(pose_files())
def test_cambridge_pose_file_reads_the_same_with_bom_and_crlf(tmp_path_factory, pose_file):
    text, _ = pose_file
    root = cambridge_root(tmp_path_factory.mktemp("cambridge"))
    (root / "dataset_train.txt").write_text(text)
    plain = read_pose_file(root, "dataset_train.txt")
    (root / "dataset_train.txt").write_bytes(bom_crlf(text))
    again = read_pose_file(root, "dataset_train.txt")
    assert again.paths == plain.paths and np.array_equal(again.poses, plain.poses)


# -- DBN hashing: image folders train/<class>/*, test/<class>/* --------------------------------------
def write_image_folders(root: Path, rng: np.random.Generator) -> list[Path]:
    files = []
    for split, per_class in (("train", 2), ("test", 1)):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for k in range(per_class):
                path = root / split / name / f"{k}.png"
                cv2.imwrite(str(path), rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
                files.append(path)
    return files


def visible_images(split: Path) -> int:
    return sum(
        1
        for c in split.iterdir()
        if c.is_dir() and not c.name.startswith((".", "_"))
        for p in c.iterdir()
        if p.is_file()
        and not p.name.startswith((".", "_"))
        and p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
    )


@SETTINGS
@given(st.integers(0, 2**16), st.sampled_from([(8, 1), (6, 3)]), st.data())
def test_image_folders_mangled(tmp_path_factory, seed, shape, data):
    root = tmp_path_factory.mktemp("folders")
    files = write_image_folders(root, np.random.default_rng(seed))
    png = files[0].read_bytes()
    for _ in range(data.draw(st.integers(1, 2))):
        op = data.draw(
            st.sampled_from(
                [
                    "bytes",
                    "empty",
                    "loose image",
                    "test-only class",
                    "empty class",
                    "hidden",
                    "not an image",
                    "nested",
                    "upper suffix",
                    "bomb",
                    "1x1",
                    "16-bit",
                ]
            )
        )
        target = data.draw(st.sampled_from(files))
        if op == "bytes" and target.exists():
            target.write_bytes(data.draw(mangled_bytes(target.read_bytes())))
        elif op == "empty":
            target.write_bytes(b"")
        elif op == "loose image":
            (root / "train" / "loose.png").write_bytes(png)
        elif op == "test-only class":
            (root / "test" / "bird").mkdir(exist_ok=True)
            (root / "test" / "bird" / "0.png").write_bytes(png)
        elif op == "empty class":
            for path in (root / "train" / "dog").iterdir():
                path.unlink()
        elif op == "hidden":
            (root / "train" / "cat" / ".thumb.png").write_bytes(b"\x00 not decoded")
        elif op == "not an image":
            (root / "train" / "cat" / "notes.txt").write_text("caf\u00e9")
        elif op == "nested":
            (root / "train" / "cat" / "deeper.png").mkdir(exist_ok=True)
        elif op == "upper suffix" and target.exists():
            target.rename(target.with_suffix(".PNG"))
        elif op == "bomb":
            target.write_bytes(png_header(100_000, 100_000, b"\x00" * 100))
        elif op == "1x1":
            cv2.imwrite(str(target), np.zeros((1, 1), np.uint8))
        elif op == "16-bit":
            cv2.imwrite(str(target), np.full((3, 4, 3), 65535, np.uint16))
    size, channels = shape
    result = outcome("dbn_hashing: image folders", lambda: read_folder(root, size, channels), str(root), root)
    if result is not None:
        for split, images in zip(("train", "test"), result):
            assert images.images.shape == (visible_images(root / split), size, size, channels)
            assert images.images.dtype == np.uint8 and set(images.labels.tolist()) <= set(range(len(images.classes)))


# -- gesture: UCR/UEA .ts files and CSV sequences ------------------------------------------------------
@st.composite
def ts_files(draw) -> str:
    dims = draw(st.integers(1, 3))
    labelled = draw(st.booleans())
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    equal = len(set(lengths)) == 1
    header = [
        "# written by a test",
        "@problemName Wave",
        "@timeStamps false",
        "@missing true",
        f"@univariate {'true' if dims == 1 else 'false'}",
        f"@dimensions {dims}",
        f"@equalLength {'true' if equal else 'false'}",
    ]
    header += [f"@seriesLength {lengths[0]}"] if equal else []
    header += ["@classLabel true up down" if labelled else "@classLabel false", "@data"]
    cases = []
    for length in lengths:
        parts = [",".join(draw(st.lists(NUMBER, min_size=length, max_size=length))) for _ in range(dims)]
        cases.append(":".join(parts + ([draw(st.sampled_from(["up", "down"]))] if labelled else [])))
    return "\n".join(header + cases) + "\n"


def ts_cases(text: str) -> int:
    lines = [line.strip() for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line[1:].partition(" ")[0].strip().lower() == "data" and line.startswith("@")]
    return sum(1 for line in lines[starts[0] + 1 :] if line and not line.startswith("#")) if starts else 0


@SETTINGS
@given(ts_files(), st.data())
def test_ts_file_mangled(tmp_path_factory, text, data):
    path = tmp_path_factory.mktemp("ts") / "Wave_TRAIN.ts"
    raw = data.draw(mangled_text(text, ":"))
    path.write_bytes(raw)
    ts = outcome("gesture: .ts", lambda: read_ts(path), "Wave_TRAIN.ts", path.parent)
    if ts is not None:
        assert ts.series and len(ts.series) == ts_cases(decoded(raw)), "a case was dropped without an error"
        for series in ts.series:
            assert series.dtype == np.float32 and series.ndim == 2 and len(series) >= 1 and series.shape[1] == ts.dims
            assert np.isfinite(series).all()
        if ts.labels is not None:
            assert len(ts.labels) == len(ts.series) and set(ts.labels) <= set(ts.class_names)


@SETTINGS
@given(ts_files())
def test_ts_file_reads_the_same_with_bom_and_crlf(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("ts") / "Wave_TRAIN.ts"
    path.write_text(text)
    plain = read_ts(path)
    path.write_bytes(bom_crlf(text))
    again = read_ts(path)
    assert again.labels == plain.labels and all(np.array_equal(a, b) for a, b in zip(again.series, plain.series))


@st.composite
def csv_sequences(draw) -> str:
    channels, frames = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    header = draw(st.booleans())
    timed = header and draw(st.booleans())  # a time column is recognised by its header
    lines = [",".join((["t"] if timed else []) + [f"ch{c}" for c in range(channels)])] if header else []
    for f in range(frames):
        values = draw(st.lists(NUMBER, min_size=channels, max_size=channels))
        lines.append(",".join(([str(f)] if timed else []) + values))
    return "\n".join(lines) + "\n"


@SETTINGS
@given(csv_sequences(), st.data())
def test_csv_sequence_mangled(tmp_path_factory, text, data):
    path = tmp_path_factory.mktemp("csv") / "swipe_01.csv"
    raw = data.draw(mangled_text(text, ","))
    path.write_bytes(raw)
    sequence = outcome("gesture: CSV sequence", lambda: read_csv_sequence(path), "swipe_01.csv", path.parent)
    if sequence is not None:
        rows = [line for line in decoded(raw).splitlines() if line.strip()]
        assert sequence.dtype == np.float32 and sequence.ndim == 2 and np.isfinite(sequence).all()
        assert len(rows) - 1 <= len(sequence) <= len(rows), "a frame was dropped without an error"


@SETTINGS
@given(csv_sequences())
def test_csv_sequence_reads_the_same_with_bom_and_crlf(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "swipe_01.csv"
    path.write_text(text)
    plain = read_csv_sequence(path)
    path.write_bytes(bom_crlf(text))
    assert np.array_equal(read_csv_sequence(path), plain)


def test_ts_huge_case_and_garbage_line(tmp_path):
    path = tmp_path / "Long_TRAIN.ts"
    path.write_text("@univariate true\n@classLabel true a b\n@data\n" + ",".join(["0.5"] * 200_000) + ":a\n")
    with time_limit():
        assert read_ts(path).series[0].shape == (200_000, 1)
    path.write_text("@univariate true\n@classLabel true a b\n@data\n" + "1,2:a\n" + "\u00e9" * 1_000_000 + ":a\n")
    with time_limit(), pytest.raises(DataError, match=r"Long_TRAIN\.ts:5"):
        read_ts(path)


# -- captioning: COCO captions JSON and the Flickr8k token file ----------------------------------------
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.sampled_from(TOKENS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def coco_root(base: Path) -> Path:
    root = base / "data"
    (root / "images").mkdir(parents=True)
    for i in range(3):
        (root / "images" / f"{i:012d}.jpg").write_bytes(b"jpeg")
    (root / "secret.jpg").write_bytes(b"outside images/")
    (base / "outside.jpg").write_bytes(b"outside the data folder")
    return root


@st.composite
def coco_docs(draw) -> dict:
    n = draw(st.integers(1, 3))
    ids = [draw(st.sampled_from([i + 1, str(i + 1)])) for i in range(n)]
    doc = {
        "info": {"year": 2014},
        "licenses": [],
        "images": [{"id": ids[i], "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in range(n)],
        "annotations": [{"id": 100 + k, "image_id": ids[k % n], "caption": f"a dog runs on grass {k}"} for k in range(n + 2)],
    }
    return doc


def _locations(value, out):
    """Every (container, key) in a JSON document."""
    if isinstance(value, dict):
        for key in value:
            out.append((value, key))
            _locations(value[key], out)
    elif isinstance(value, list):
        for index in range(len(value)):
            out.append((value, index))
            _locations(value[index], out)
    return out


@st.composite
def mangled_json(draw, doc: dict) -> bytes:
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(0, 3))):
        places = _locations(doc, [])
        container, key = draw(st.sampled_from(places))
        op = draw(st.sampled_from(["set", "set", "delete", "add key", "escape", "duplicate"]))
        if op == "set":
            container[key] = draw(JSON_VALUE)
        elif op == "delete":
            del container[key]
        elif op == "add key" and isinstance(container[key], dict):
            container[key][draw(st.text(max_size=6))] = draw(JSON_VALUE)
        elif op == "escape":
            container[key] = draw(
                st.sampled_from(
                    [
                        "../secret.jpg",
                        "../../outside.jpg",
                        "/etc/passwd",
                        "..",
                        "",
                        "images/../../outside.jpg",
                        "..\\secret.jpg",
                        "C:\\secret.jpg",
                    ]
                )
            )
        elif op == "duplicate" and isinstance(container, list):
            container.append(json.loads(json.dumps(container[key])))
    text = json.dumps(doc, indent=draw(st.sampled_from([None, 1])), ensure_ascii=draw(st.booleans()))
    return draw(mangled_bytes(text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")))


@SETTINGS
@given(coco_docs(), st.data())
def test_coco_captions_mangled(tmp_path_factory, doc, data):
    root = coco_root(tmp_path_factory.mktemp("coco"))
    (root / "captions_train.json").write_bytes(data.draw(mangled_json(doc)))
    items = outcome("captioning: COCO captions JSON", lambda: read_coco(root, "train"), "captions_train.json", root)
    if items is not None:
        assert items
        for file, captions in items:
            assert inside(file, root / "images") and file.is_file(), f"{file} is outside {root / 'images'}"
            assert captions and all(isinstance(c, str) for c in captions)


def test_coco_deeply_nested_or_huge_json(tmp_path):
    root = coco_root(tmp_path)
    (root / "captions_train.json").write_text("[" * 200_000 + "]" * 200_000)
    with time_limit(), pytest.raises(DataError, match="captions_train.json"):
        read_coco(root, "train")
    doc = {
        "images": [{"id": i, "file_name": "000000000000.jpg"} for i in range(1)],
        "annotations": [{"image_id": 0, "caption": "a dog " * 20} for _ in range(50_000)],
    }
    (root / "captions_train.json").write_text(json.dumps(doc))
    with time_limit():
        assert len(read_coco(root, "train")[0][1]) == 50_000


@st.composite
def flickr_tokens(draw) -> tuple[str, tuple[str, ...]]:
    n = draw(st.integers(5, 7))
    names = tuple(f"{1000 + i}_abc.jpg" for i in range(n))
    lines = [
        f"{name}#{k}\t{draw(st.sampled_from(['A child plays .', 'Two dogs run', 'a man on a bike']))}"
        for name in names
        for k in range(draw(st.integers(1, 2)))
    ]
    return "\n".join(lines) + "\n", names


def flickr_root(base: Path, names: tuple[str, ...], split_files: bool) -> Path:
    root = base / "data"
    (root / "Flicker8k_Dataset").mkdir(parents=True)
    for name in names:
        (root / "Flicker8k_Dataset" / name).write_bytes(b"jpeg")
    if split_files:
        (root / "Flickr_8k.trainImages.txt").write_text("\n".join(names[:-2]) + "\n")
        (root / "Flickr_8k.testImages.txt").write_text("\n".join(names[-2:]) + "\n")
    (base / "outside.jpg").write_bytes(b"outside the data folder")
    (root / "secret.jpg").write_bytes(b"beside the image folder")
    return root


@SETTINGS
@given(flickr_tokens(), st.booleans(), st.data())
def test_flickr8k_tokens_mangled(tmp_path_factory, tokens, split_files, data):
    text, names = tokens
    root = flickr_root(tmp_path_factory.mktemp("flickr"), names, split_files)
    (root / "Flickr8k.token.txt").write_bytes(data.draw(mangled_text(text, "\t", names)))
    splits = outcome("captioning: Flickr8k.token.txt", lambda: read_flickr8k(root), "Flickr8k.token.txt", root)
    if splits is not None:
        assert set(splits) == {"train", "test"}
        for items in splits.values():
            assert items
            for file, captions in items:
                assert inside(file, root) and file.is_file(), f"{file} is outside {root}"
                assert captions and all(isinstance(c, str) for c in captions)


@SETTINGS
@given(flickr_tokens(), st.booleans())
def test_flickr8k_tokens_read_the_same_with_bom_and_crlf(tmp_path_factory, tokens, split_files):
    text, names = tokens
    root = flickr_root(tmp_path_factory.mktemp("flickr"), names, split_files)
    (root / "Flickr8k.token.txt").write_text(text)
    plain = read_flickr8k(root)
    (root / "Flickr8k.token.txt").write_bytes(bom_crlf(text))
    assert read_flickr8k(root) == plain


# -- paths with NUL bytes and symlink loops, in every format that names image files -----------------------
@pytest.mark.parametrize("raw", ["seq1/\x00frame00000.png", "loop/frame00000.png", "loop", "seq1/../../outside.png"])
def test_unresolvable_or_escaping_paths_are_refused(tmp_path, raw):
    root = cambridge_root(tmp_path)
    (root / "loop").symlink_to(root / "loop")
    (root / "dataset_train.txt").write_text(HEADER + f"{raw} 0 0 0 1 0 0 0\n")
    with time_limit(), pytest.raises(DataError, match=r"dataset_train\.txt:4"):
        read_pose_file(root, "dataset_train.txt")
    split = udacity_split(tmp_path / "udacity")
    (split / "IMG" / "loop").symlink_to(split / "IMG" / "loop")
    (split / "driving_log.csv").write_text(f"IMG/{raw}, , , 0.1, 0, 0, 0\n")
    with time_limit(), pytest.raises(DataError, match=r"driving_log\.csv:1"):
        read_driving_log(split, tmp_path / "udacity")
    coco = coco_root(tmp_path / "coco")
    (coco / "images" / "loop").symlink_to(coco / "images" / "loop")
    doc = {"images": [{"id": 1, "file_name": raw}], "annotations": [{"image_id": 1, "caption": "a loop"}]}
    (coco / "captions_train.json").write_text(json.dumps(doc))
    with time_limit(), pytest.raises(DataError, match=r"captions_train\.json: images\[0\]"):
        read_coco(coco, "train")


# -- symbolic links: one rule for every reader (apptool.paths.inside_data_folder) -------------------------------
def _udacity(base: Path, fallback: bool = False):
    root = base / "data"
    split = udacity_split(root)
    center = "C:\\Users\\driver\\sim\\IMG\\center_0.jpg" if fallback else "IMG/center_0.jpg"
    (split / "driving_log.csv").write_text(f"{center}, IMG/left_0.jpg, , 0.1, 0, 0, 0\n")
    return root, split / "IMG" / "center_0.jpg", lambda data: read_driving_log(data / "train", data)


def _coco(base: Path):
    root = coco_root(base)
    doc = {"images": [{"id": 1, "file_name": "000000000001.jpg"}], "annotations": [{"image_id": 1, "caption": "a dog"}]}
    (root / "captions_train.json").write_text(json.dumps(doc))
    return root, root / "images" / "000000000001.jpg", lambda data: read_coco(data, "train")


def _flickr(base: Path):
    names = tuple(f"{1000 + i}_abc.jpg" for i in range(5))
    root = flickr_root(base, names, split_files=False)
    (root / "Flickr8k.token.txt").write_text("".join(f"{name}#0\tA child plays .\n" for name in names))
    return root, root / "Flicker8k_Dataset" / names[4], read_flickr8k


def _image_folders(base: Path):
    root = base / "data"
    write_image_folders(root, np.random.default_rng(0))
    return root, root / "train" / "cat" / "1.png", lambda data: read_folder(data, 8, 1)


def _images_masks(base: Path, role: str):
    root = base / "data"
    root.mkdir()
    files = write_images_masks(root, np.random.default_rng(0))
    return root, files[role], read_data_dir


def _stanford(base: Path):
    root = base / "data"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem in ("0000001", "0000002"):
        cv2.imwrite(str(root / "images" / f"{stem}.png"), np.zeros((2, 3, 3), np.uint8))
        (root / "labels" / f"{stem}.regions.txt").write_text("0 1 2\n-1 0 1\n")
    return root, root / "labels" / "0000002.regions.txt", read_data_dir


def _cambridge(base: Path):
    root = cambridge_root(base)
    (root / "dataset_train.txt").write_text(HEADER + "seq1/frame00001.png 0 0 0 1 0 0 0\n")
    return root, root / "seq1" / "frame00001.png", lambda data: read_pose_file(data, "dataset_train.txt")


def _gesture(base: Path, kind: str):
    from apptool_gesture.data import load_splits as gesture_splits

    from apptool.plugins import get_plugins

    root = base / "data"
    config = get_plugins().task("gesture").config("tiny")
    if kind == "ts":
        root.mkdir()
        for split in ("TRAIN", "TEST"):
            header = "@problemName Wave\n@timeStamps false\n@univariate true\n@classLabel true up down\n@data\n"
            (root / f"Wave_{split}.ts").write_text(header + "1,2,3,4:up\n4,3,2,1:down\n")
        return root, root / "Wave_TEST.ts", lambda data: gesture_splits(config, data)
    for split in ("train", "test"):
        for label in ("up", "down"):
            (root / split / label).mkdir(parents=True)
            (root / split / label / "a.csv").write_text("x,y\n0,0\n1,1\n2,2\n")
    return root, root / "train" / "down" / "a.csv", lambda data: gesture_splits(config, data)


LINKED_FILES = {
    "steering: image named by driving_log.csv": _udacity,
    "steering: IMG/ fallback for another machine's path": lambda base: _udacity(base, fallback=True),
    "captioning: COCO image": _coco,
    "captioning: Flickr8k image": _flickr,
    "dbn_hashing: image in a class folder": _image_folders,
    "scene_labeling: image of the images/masks layout": lambda base: _images_masks(base, "image b"),
    "scene_labeling: mask of the images/masks layout": lambda base: _images_masks(base, "mask c"),
    "scene_labeling: Stanford regions file": _stanford,
    "posenet: image named by dataset_train.txt": _cambridge,
    "gesture: UCR/UEA .ts file": lambda base: _gesture(base, "ts"),
    "gesture: CSV sequence in a class folder": lambda base: _gesture(base, "csv"),
}


@pytest.mark.parametrize("reader", LINKED_FILES)
def test_a_symbolic_link_out_of_the_data_folder_is_refused_naming_the_file_and_its_target(reader, tmp_path):
    root, file, read = LINKED_FILES[reader](tmp_path)
    assert read(root)
    target = tmp_path / "elsewhere" / file.name
    target.parent.mkdir()
    file.rename(target)
    file.symlink_to(target)
    with time_limit(), pytest.raises(DataError) as caught:
        read(root)
    message = str(caught.value)
    assert str(file) in message and str(target) in message and "outside the data folder" in message, message


@pytest.mark.parametrize("reader", LINKED_FILES)
def test_links_that_stay_inside_the_data_folder_are_followed_and_the_folder_itself_may_be_a_link(reader, tmp_path):
    root, file, read = LINKED_FILES[reader](tmp_path)
    kept = file.parent / "store" / file.name
    kept.parent.mkdir()
    file.rename(kept)
    file.symlink_to(kept)
    linked = tmp_path / "linked data"
    linked.symlink_to(root, target_is_directory=True)
    assert read(linked)
