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


# -- decompression bombs: every format OpenCV decodes is sized from its header, never decoded -----------------
HUGE = 20_000  # 20000 x 20000 = 400 M pixels, ten times the limit


def _tiff(order: str, big: bool, kind: int = 4) -> bytes:
    """A minimal TIFF or BigTIFF whose first directory declares HUGE x HUGE (the pixel data is absent)."""
    magic = b"II" if order == "<" else b"MM"
    value = {3: "H", 4: "I", 16: "Q"}[kind]
    if big:
        head = magic + struct.pack(order + "HHHQ", 43, 8, 0, 16)
        entry = lambda tag: struct.pack(order + "HHQ", tag, kind, 1) + struct.pack(order + value, HUGE).ljust(8, b"\0")  # noqa: E731
        return head + struct.pack(order + "Q", 3) + entry(256) + entry(257) + struct.pack(order + "HHQQ", 258, 3, 1, 8)
    head = magic + struct.pack(order + "HI", 42, 8)
    entry = lambda tag: struct.pack(order + "HHI", tag, kind, 1) + struct.pack(order + value, HUGE).ljust(4, b"\0")  # noqa: E731
    return head + struct.pack(order + "H", 3) + entry(256) + entry(257) + struct.pack(order + "HHII", 258, 3, 1, 8)


def _jpeg_with(prefix_sof: bytes, sof: int = 0xC0) -> bytes:
    """A real JPEG whose frame header declares HUGE x HUGE, with ``prefix_sof`` (fill bytes, junk) before its marker."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", HUGE, HUGE)
    data[at + 1] = sof
    return bytes(data[:at] + prefix_sof + data[at:])


def _riff(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


BOMBS = {
    "classic TIFF, little-endian": _tiff("<", big=False),
    "classic TIFF, big-endian, SHORT sizes": _tiff(">", big=False, kind=3),
    "BigTIFF, little-endian": _tiff("<", big=True),
    "BigTIFF, big-endian, LONG8 sizes": _tiff(">", big=True, kind=16),
    "JPEG with a 0xFF fill byte before SOF0": _jpeg_with(b"\xff"),
    "JPEG with junk and fill bytes before a progressive SOF2": _jpeg_with(b"junk\xff\x00\xff\xff", sof=0xC2),
    "JPEG, arithmetic-coded SOF9": _jpeg_with(b"", sof=0xC9),
    "WebP lossy (VP8)": _riff(b"VP8 ", b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", 16000, 16000) + bytes(8)),
    "WebP lossless (VP8L), 16000 x 16000": _riff(b"VP8L", b"\x2f" + struct.pack("<I", 15999 | 15999 << 14) + bytes(8)),
    "WebP extended (VP8X) canvas": _riff(b"VP8X", bytes(4) + (HUGE - 1).to_bytes(3, "little") * 2),
    "BMP": b"BM" + bytes(12) + struct.pack("<Iii", 40, HUGE, -HUGE) + bytes(32),
    "OS/2 BMP, 65535 x 65535": b"BM" + bytes(12) + struct.pack("<IHH", 12, 65535, 65535) + bytes(32),
    "GIF logical screen": b"GIF89a" + struct.pack("<HHBBB", HUGE, HUGE, 0, 0, 0) + b";",
    "GIF frame larger than its screen": b"GIF89a"
    + struct.pack("<HHBBB", 1, 1, 0, 0, 0)
    + b"!\xf9\x04"
    + bytes(5)
    + b","
    + struct.pack("<HHHHB", 0, 0, HUGE, HUGE, 0),
    "PPM with a comment": b"P6\n# made by a scanner\n20000 20000\n255\n" + bytes(64),
    "PBM plain": b"P1 20000\n20000\n0 1",
    "PAM": b"P7\nWIDTH 20000\nHEIGHT 20000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(64),
    "PFM": b"PF\n20000 20000\n-1\n" + bytes(64),
    "Sun raster": b"\x59\xa6\x6a\x95" + struct.pack(">IIIIIII", HUGE, HUGE, 24, 0, 1, 0, 0),
    "Radiance HDR": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 20000 +X 20000\n" + bytes(64),
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Any decode fails the test: a bomb must be refused from its header alone."""

    def decoded(*args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(cv2, "imdecode", decoded)
    monkeypatch.setattr(cv2, "imread", decoded)


@pytest.mark.parametrize("kind", BOMBS)
def test_every_format_is_sized_from_its_header_and_a_bomb_is_never_decoded(kind, tmp_path, no_decoding):
    path = tmp_path / "bomb.img"
    path.write_bytes(BOMBS[kind])
    assert path.stat().st_size < 1000
    with pytest.raises(InputError, match=r"bomb\.img: image is \d+x\d+ = [\d,]+ pixels, more than the limit"):
        read_image(path)


@pytest.mark.parametrize(
    "data",
    [b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(64), b"\x00\x00\x00\x20ftypavif" + bytes(64), b"v/1\x01" + bytes(64)],
    ids=["JPEG 2000", "AVIF", "OpenEXR"],
)
def test_a_format_without_a_header_parser_is_refused_not_decoded(data, no_decoding):
    with pytest.raises(InputError, match=r"upload: not a readable image \(not a format this tool reads; expected PNG, JPEG"):
        decode_image(data, "upload")


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0", _tiff("<", big=False)[:20], b"\xff\xd8\xff\xe0\x00\x10JF"]
)
def test_a_header_cut_short_is_refused_not_decoded(data, no_decoding):
    with pytest.raises(InputError, match=r"cut\.png: not a readable image \(.*(cut short|ends before)"):
        decode_image(data, "cut.png")


@pytest.mark.parametrize(
    "ext", [".png", ".jpg", ".tiff", ".webp", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".pam", ".pfm", ".sr", ".hdr"]
)
def test_ordinary_files_of_every_format_still_read(ext, tmp_path):
    from apptool.image_headers import image_size

    image = np.zeros((5, 7, 3), np.uint8)
    image[1:4, 2:6] = (40, 160, 250)
    if ext in (".pfm", ".hdr"):
        image = image.astype(np.float32) / 255
    elif ext in (".pgm", ".pbm"):
        image = image[:, :, 0]
    ok, data = cv2.imencode(ext, image)
    assert ok
    assert image_size(data.tobytes()) == (7, 5)
    (tmp_path / f"small{ext}").write_bytes(data.tobytes())
    assert read_image(tmp_path / f"small{ext}").shape == (5, 7, 3)


def test_big_endian_tiff_and_bigtiff_headers_give_their_sizes():
    from apptool.image_headers import image_size

    assert image_size(_tiff(">", big=False)) == image_size(_tiff("<", big=True)) == (HUGE, HUGE)
    ok, data = cv2.imencode(".tiff", np.zeros((9, 4), np.uint16))
    assert ok and image_size(data.tobytes()) == (4, 9)


def test_a_video_whose_frames_are_over_the_limit_is_refused_before_its_first_frame(tmp_path, monkeypatch):
    from apptool import images
    from apptool.images import iter_video_frames, write_video

    path = write_video(tmp_path / "clip.mp4", [np.zeros((16, 24, 3), np.uint8)] * 3)
    assert len(list(iter_video_frames(path))) == 3
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    monkeypatch.setattr(images, "to_rgb", lambda *args, **kwargs: pytest.fail("a frame was decoded and converted"))
    with pytest.raises(InputError, match=r"clip\.mp4: image is 24x16 = 384 pixels, more than the limit of 100"):
        next(iter_video_frames(path))
