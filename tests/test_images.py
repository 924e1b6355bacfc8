"""User images: every bad input is a clear InputError naming the file; odd but valid ones are converted."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from apptool.errors import InputError
from apptool.images import decode_image, read_image, to_rgb


def png_bytes(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.png: file is empty"):
        read_image(tmp_path / "empty.png")


def test_corrupt_bytes(tmp_path):
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 garbage " * 20)
    with pytest.raises(InputError, match=r"corrupt\.jpg: not a readable image"):
        read_image(path)


def test_truncated_png_is_refused_or_decoded_never_crashes():
    data = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    try:
        image = decode_image(data[: len(data) // 2], "half.png")
        assert image.shape == (64, 64, 3)
    except InputError as exc:
        assert "half.png" in str(exc)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_grayscale_rgba_and_16_bit_become_rgb():
    gray = np.full((5, 7), 200, np.uint8)
    assert decode_image(png_bytes(gray)).shape == (5, 7, 3)
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2] = 255  # red in OpenCV's BGRA order
    bgra[..., 3] = 255
    assert decode_image(png_bytes(bgra))[0, 0].tolist() == [255, 0, 0]
    transparent = np.zeros((4, 4, 4), np.uint8)
    assert decode_image(png_bytes(transparent))[0, 0].tolist() == [255, 255, 255]
    deep = np.full((3, 3), 65535, np.uint16)
    assert decode_image(png_bytes(deep))[0, 0].tolist() == [255, 255, 255]


def test_huge_image_is_refused_from_its_header_before_decoding():
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = header + struct.pack(">I", zlib.crc32(header[12:]) & 0xFFFFFFFF)
    with pytest.raises(InputError, match="more than the limit"):
        decode_image(bomb, "bomb.png")


def test_arrays_from_the_demo_are_validated():
    with pytest.raises(InputError, match="expected an HxW"):
        to_rgb(np.zeros((0, 0, 3), np.uint8), "upload")
    with pytest.raises(InputError, match="NaN"):
        to_rgb(np.full((2, 2, 3), np.nan, np.float32), "upload")
    with pytest.raises(InputError, match="expected an HxW"):
        to_rgb(np.zeros((2, 2, 2, 2), np.uint8), "upload")
    assert to_rgb(np.ones((2, 2, 3), np.float32)).max() == 255
