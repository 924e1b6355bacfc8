"""Property-based tests of the core's input handling: any bytes, any array, never a crash or a hang."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from apptool.bundle import load_state, read_config
from apptool.errors import AppToolError, BundleError, InputError
from apptool.images import decode_image, to_rgb

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def valid_png(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


@SETTINGS
@given(st.binary(max_size=4096))
def test_any_bytes_decode_to_an_image_or_a_clear_error(data):
    try:
        image = decode_image(data, "upload.bin")
    except InputError as exc:
        assert "upload.bin" in str(exc)
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@SETTINGS
@given(st.integers(0, 1000), st.integers(0, 400), st.binary(max_size=64))
def test_truncated_or_spliced_pngs_never_crash(seed, cut, junk):
    data = valid_png(seed)
    mangled = data[: max(len(data) - cut, 0)] + junk
    try:
        decode_image(mangled, "photo.png")
    except InputError as exc:
        assert "photo.png" in str(exc)


@SETTINGS
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9),
    )
)
def test_any_array_is_an_rgb_image_or_a_clear_error(array):
    try:
        image = to_rgb(array, "canvas")
    except InputError as exc:
        assert "canvas" in str(exc)
    else:
        assert image.dtype == np.uint8 and image.shape == (*array.shape[:2], 3)


@SETTINGS
@given(st.binary(max_size=2048))
def test_any_bytes_as_weights_are_refused_cleanly(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("w") / "weights.safetensors"
    path.write_bytes(data)
    try:
        load_state(path)
    except BundleError as exc:
        assert "weights.safetensors" in str(exc)


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=512).map(lambda b: b.decode("latin-1")),
        st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=10,
        ).map(lambda v: __import__("json").dumps(v)),
    )
)
def test_any_config_json_is_read_or_refused_with_the_file_named(tmp_path_factory, text):
    bundle = tmp_path_factory.mktemp("b")
    (bundle / "config.json").write_text(text, encoding="latin-1")
    try:
        config = read_config(bundle)
    except AppToolError as exc:
        assert "config.json" in str(exc)
    else:
        assert "task" in config and "graphs" in config


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_float_images_are_refused(value):
    with pytest.raises(InputError, match="NaN or infinite"):
        to_rgb(np.full((4, 4, 3), value, np.float32), "frame")
