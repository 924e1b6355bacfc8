"""Property-based tests of every task's predict entries: any file to ``read_input``, any array to ``predict``.

Each task's ``tiny`` bundle (``shared_bundle``, trained once per run) predicts on
ONNX Runtime.  ``read_input`` gets random bytes and mangled valid files with every
suffix the task accepts; ``Predictor.predict`` gets arrays of every shape and
dtype (empty, 1x1, extreme aspect, NaN/Inf, over the pixel limit) and, for
gesture, sequences of any length.  Each call ends in an AppToolError naming
the file or item, or in one JSON-ready result per item with finite numbers;
never another exception, a hang, or results for only part of a batch.
"""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from mutations import SETTINGS, mangled_bytes, mangled_text, outcome, write_messages

from apptool.errors import InputError
from apptool.images import IMAGE_SUFFIXES, MAX_PIXELS, VIDEO_SUFFIXES, write_video

IMAGE_TASKS = ["steering", "scene_labeling", "posenet", "dbn_hashing", "captioning", "image_classification"]
DTYPES = [np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_, np.complex64]
#: Shapes a user hands in by mistake or at the edge of what is valid.
ODD_SHAPES = [
    (0, 0, 3),
    (1, 1),
    (1, 1, 3),
    (1, 1, 4),
    (2, 2, 1),
    (1, 700, 3),
    (700, 1, 3),
    (3, 3, 2),
    (3, 3, 5),
    (4,),
    (2, 3, 4, 3),
    (),
]


@pytest.fixture(scope="module", autouse=True)
def report_messages():
    yield
    write_messages()


@pytest.fixture(scope="session")
def predictor(shared_bundle):
    """``predictor(task_name)``: an ONNX Runtime Predictor over that task's tiny bundle (trained once per run)."""
    from apptool.plugins import get_plugins
    from apptool.runtime import Predictor

    loaded = {}

    def get(name: str) -> Predictor:
        if name not in loaded:
            task = get_plugins().task(name)
            loaded[name] = Predictor(shared_bundle(task), task=task)
        return loaded[name]

    return get


def assert_results(results, n: int) -> None:
    """One result per item, JSON-ready with finite numbers only."""
    assert isinstance(results, list) and len(results) == n, f"{n} items gave {len(results)} results"
    json.dumps(results, allow_nan=False)


def names_item(index: int):
    return re.compile(rf"\b(item|input|image|sequence) {index}\b")


# -- read_input: any bytes, mangled valid files, every accepted suffix ---------------------------------
def valid_file(task, config, suffix: str, tmp_path) -> bytes:
    """A well-formed file of this suffix made from the task's own sample inputs (b"" where none can be made)."""
    samples = task.sample_inputs(config, 3, seed=1)
    if suffix in IMAGE_SUFFIXES:
        ok, data = cv2.imencode(suffix, samples[0][:, :, ::-1])
        return data.tobytes() if ok else b""
    if suffix in VIDEO_SUFFIXES:
        path = write_video(tmp_path / f"clip{suffix}", [np.ascontiguousarray(s) for s in samples])
        return path.read_bytes() if path.is_file() else b""
    if suffix == ".csv":
        header = ",".join(f"channel{d}" for d in range(samples[0].shape[1]))
        return (header + "\n" + "\n".join(",".join(f"{v:.5f}" for v in row) for row in samples[0])).encode()
    if suffix == ".ts":
        rows = [":".join(",".join(f"{v:.5f}" for v in seq[:, d]) for d in range(seq.shape[1])) for seq in samples]
        return (
            "@problemName Gestures\n@univariate false\n@equalLength false\n@classLabel false\n@data\n" + "\n".join(rows) + "\n"
        ).encode()
    return b""


@pytest.mark.parametrize("name", [*IMAGE_TASKS, "gesture"])
def test_read_input_any_file_then_predict(name, predictor, tmp_path_factory):
    loaded = predictor(name)
    task, config = loaded.task, loaded.config
    folder = tmp_path_factory.mktemp(f"{name}-valid")
    valid = {suffix: valid_file(task, config, suffix, folder) for suffix in sorted(task.input_suffixes)}

    @SETTINGS
    @given(st.sampled_from(sorted(valid)), st.data())
    def read_then_predict(suffix, data):
        text = suffix in (".ts", ".csv")
        content = data.draw(
            st.one_of(
                st.binary(max_size=2048),
                mangled_text(valid[suffix].decode(), ":" if suffix == ".ts" else ",") if text else mangled_bytes(valid[suffix]),
            )
        )
        path = tmp_path_factory.mktemp("upload") / f"upload{suffix}"
        path.write_bytes(content)
        items = outcome(f"{name}: read_input {suffix}", lambda: list(task.read_input(path)), path.name, path.parent)
        if items:
            batch = [item for _, item in items[:8]]
            results = outcome(f"{name}: predict after read_input", lambda: loaded.predict(batch), "item", expected=InputError)
            if results is not None:
                assert_results(results, len(batch))

    read_then_predict()


# -- predict on arrays: image tasks -----------------------------------------------------------------------
IMAGE_SHAPES = st.tuples(st.integers(1, 48), st.integers(1, 48)).flatmap(
    lambda hw: st.sampled_from([hw, (*hw, 1), (*hw, 3), (*hw, 4)])
)
ARRAYS = st.one_of(
    hnp.arrays(dtype=st.sampled_from(DTYPES), shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12)),
    hnp.arrays(dtype=st.sampled_from(DTYPES), shape=IMAGE_SHAPES),
    st.tuples(st.sampled_from(ODD_SHAPES), st.sampled_from(DTYPES), st.sampled_from([0, 1, 255, 65535, -1, np.nan, np.inf])).map(
        lambda t: np.full(t[0], t[2]).astype(t[1])
    ),
)


@pytest.mark.parametrize("name", IMAGE_TASKS)
def test_predict_any_array(name, predictor):
    loaded = predictor(name)
    good = loaded.task.sample_inputs(loaded.config, 1, seed=2)[0]

    @SETTINGS
    @given(ARRAYS, st.booleans())
    @example(np.full((6, 6, 3), np.nan, np.float32), False)
    @example(np.full((6, 6, 3), -np.inf, np.float64), True)
    @example(np.zeros((0, 0, 3), np.uint8), False)
    def predict_array(array, after_a_good_one):
        items = [good, array] if after_a_good_one else [array]
        results = outcome(
            f"{name}: predict on arrays", lambda: loaded.predict(items), names_item(len(items) - 1), expected=InputError
        )
        if results is not None:
            assert_results(results, len(items))

    predict_array()


@pytest.mark.parametrize("name", IMAGE_TASKS)
def test_predict_errors_name_the_bad_item_and_give_no_partial_output(name, predictor):
    loaded = predictor(name)
    good = loaded.task.sample_inputs(loaded.config, 1, seed=2)[0]
    for bad in (np.zeros((0, 0, 3), np.uint8), np.full((5, 5, 3), np.nan, np.float32), np.zeros((2, 3, 4, 3), np.uint8)):
        with pytest.raises(InputError) as caught:
            loaded.predict([good, good, bad])
        assert names_item(2).search(str(caught.value)), str(caught.value)


@pytest.mark.parametrize("name", IMAGE_TASKS)
def test_predict_refuses_images_over_the_pixel_limit(name, predictor):
    loaded = predictor(name)
    side = int(MAX_PIXELS**0.5) + 1
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (side, side, 3))  # a view: nothing is allocated
    with pytest.raises(InputError, match="more than the limit"):
        loaded.predict([huge])


# -- predict on sequences: gesture ------------------------------------------------------------------------
SEQUENCES = st.one_of(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
    ),
    hnp.arrays(
        dtype=np.float64, shape=st.tuples(st.integers(0, 60), st.just(2)), elements=st.floats(allow_nan=True, allow_infinity=True)
    ),
    st.lists(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3), max_size=6),
    st.sampled_from(["", "a swipe", None, {"x": 1}, [[1.0, 2.0], [3.0]]]),
)


def test_gesture_predict_any_sequence(predictor):
    loaded = predictor("gesture")
    dims = loaded.config["input"]["raw_dims"]
    well_shaped = hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int16]), shape=st.tuples(st.integers(1, 300), st.just(dims))
    )

    @SETTINGS
    @given(st.one_of(SEQUENCES, well_shaped))
    @example(np.zeros((0, 2), np.float32))
    @example(np.zeros((1, 2), np.float32))
    @example(np.array([[np.nan, 0.0], [1.0, 2.0]], np.float32))
    @example(np.array([[3e38, 0.0], [-3e38, 0.0]], np.float32))
    def predict_sequence(sequence):
        results = outcome("gesture: predict on sequences", lambda: loaded.predict([sequence]), names_item(0), expected=InputError)
        if results is not None:
            assert_results(results, 1)
            assert sum(results[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)

    predict_sequence()


def test_gesture_refuses_absurd_lengths_without_running_them(predictor):
    loaded = predictor("gesture")
    dims = loaded.config["input"]["raw_dims"]
    endless = np.broadcast_to(np.zeros((1, dims), np.float32), (10**7, dims))  # a float32 view: nothing is allocated
    with pytest.raises(InputError, match="item 0"):
        loaded.predict([endless])
    assert_results(loaded.predict([np.zeros((1, dims), np.float32), np.zeros((5000, dims), np.float32)]), 2)


@pytest.mark.parametrize("name", IMAGE_TASKS)
@pytest.mark.parametrize("array", [np.full((4, 4, 3), "a"), np.full((4, 4, 3), None, object)], ids=["text", "object"])
def test_predict_refuses_non_numeric_arrays(name, array, predictor):
    with pytest.raises(InputError, match="item 0|input 0|image 0"):
        predictor(name).predict([array])


def test_gesture_drawing_any_stroke_text(predictor):
    """The canvas's JSON as any client may post it (mangled, deeply nested, not JSON): a result or one InputError."""
    from apptool_gesture.stroke import stroke_to_sequence

    loaded = predictor("gesture")
    times = np.linspace(0.0, 900.0, 40)
    circle = [[200 + 100 * np.cos(t / 150), 200 + 100 * np.sin(t / 150), t, 0] for t in times]
    valid = json.dumps({"width": 400, "height": 400, "points": circle})
    assert_results(loaded.predict([stroke_to_sequence(valid, loaded.config)[0]]), 1)
    texts = st.one_of(
        st.text(max_size=300),
        mangled_text(valid, ",").map(lambda raw: raw.decode("utf-8", errors="replace")),
        st.integers(1, 100).map(lambda depth: "[" * depth * 1000),
    )

    @SETTINGS
    @given(texts)
    @example(valid)
    def draw_then_predict(text):
        found = outcome("gesture: drawing", lambda: stroke_to_sequence(text, loaded.config)[0], "", expected=InputError)
        if found is not None:
            results = outcome("gesture: predict a drawing", lambda: loaded.predict([found]), names_item(0), expected=InputError)
            if results is not None:
                assert_results(results, 1)

    draw_then_predict()
