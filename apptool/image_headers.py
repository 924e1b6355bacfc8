"""Width and height of an encoded image from its header alone, for every format OpenCV decodes.

OpenCV has no header-only read: ``cv2.imdecode`` allocates the whole image
before anyone can look at its size, so a 2 MB TIFF declaring 20000×20000
pixels costs gigabytes.  Each parser below follows its format's spec and the
quirks OpenCV's decoders accept (fill bytes and junk before JPEG markers,
both TIFF byte orders and BigTIFF, WebP's three chunk kinds).  OpenCV picks a
decoder by the file's first bytes, and so does :func:`image_size`; a format
without a parser here (JPEG 2000, OpenEXR, AVIF, JPEG XL, ...) raises
ValueError, so its file is refused instead of decoded.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

#: JPEG start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic).
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RSTn, SOI: no length field
TIFF_SIZE_TAGS = {256: "width", 257: "height", 322: "tile width", 323: "tile length"}
TIFF_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8 (BigTIFF)
PNM_NUMBER = re.compile(rb"(?:\s|#[^\r\n]*[\r\n])*(\d+)")
RADIANCE_SIZE = re.compile(rb"\s*-Y\s+(\d+)\s+\+X\s+(\d+)")


class Truncated(ValueError):
    """The header ends before the field being read."""


def _unpack(fmt: str, data: bytes, offset: int) -> tuple:
    if offset < 0 or offset + struct.calcsize(fmt) > len(data):
        raise Truncated("header is cut short")
    return struct.unpack_from(fmt, data, offset)


def _png(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        raise ValueError("PNG without an IHDR header chunk")
    return _unpack(">II", data, 16)


def _jpeg(data: bytes) -> tuple[int, int]:
    """The first frame header, found the way libjpeg finds markers (junk and 0xFF fill bytes are skipped)."""
    i, n = 2, len(data)
    while True:
        marker = 0
        while marker == 0:  # FF 00 is stuffed data, not a marker: libjpeg skips it as junk
            while i < n and data[i] != 0xFF:
                i += 1
            while i < n and data[i] == 0xFF:
                i += 1
            if i >= n:
                raise Truncated("JPEG ends before its frame header")
            marker, i = data[i], i + 1
        if marker in JPEG_SOF:
            height, width = _unpack(">HH", data, i + 3)  # length (2), precision (1), height, width
            return width, height
        if marker in (0xD9, 0xDA):
            raise ValueError("JPEG has no frame header before its image data")
        if marker not in JPEG_STANDALONE:
            (length,) = _unpack(">H", data, i)
            if length < 2:
                raise ValueError(f"JPEG segment 0xFF{marker:02X} has length {length}")
            i += length


def _tiff(data: bytes) -> tuple[int, int]:
    """ImageWidth and ImageLength of the first IFD (the page OpenCV reads); tiles count too."""
    order = "<" if data[:2] == b"II" else ">"
    (version,) = _unpack(order + "H", data, 2)
    if version == 43:  # BigTIFF: 8-byte offsets and counts
        (offset,) = _unpack(order + "Q", data, 8)
        (entries,) = _unpack(order + "Q", data, offset)
        first, step, value_at = offset + 8, 20, 12
    else:
        (offset,) = _unpack(order + "I", data, 4)
        (entries,) = _unpack(order + "H", data, offset)
        first, step, value_at = offset + 2, 12, 8
    if first + entries * step > len(data):
        raise Truncated("TIFF directory is cut short")
    found: dict[str, int] = {}
    for entry in range(first, first + entries * step, step):
        tag, kind = _unpack(order + "HH", data, entry)
        if tag in TIFF_SIZE_TAGS and kind in TIFF_TYPES:
            (found[TIFF_SIZE_TAGS[tag]],) = _unpack(order + TIFF_TYPES[kind], data, entry + value_at)
    if "width" not in found or "height" not in found:
        raise ValueError("TIFF without ImageWidth and ImageLength")
    tile = found.get("tile width", 0), found.get("tile length", 0)
    return max((found["width"], found["height"]), tile, key=lambda size: size[0] * size[1])  # the decoder buffers a whole tile


def _webp(data: bytes) -> tuple[int, int]:
    if data[8:12] != b"WEBP":
        raise ValueError("RIFF file that is not WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ValueError("WebP VP8 chunk without its start code")
        width, height = _unpack("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = _unpack("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # the canvas, which is what the decoder allocates
        low_w, high_w, low_h, high_h = _unpack("<HBHB", data, 24)
        return (low_w | high_w << 16) + 1, (low_h | high_h << 16) + 1
    raise ValueError(f"WebP with an unknown first chunk {chunk!r}")


def _bmp(data: bytes) -> tuple[int, int]:
    (header,) = _unpack("<I", data, 14)
    width, height = _unpack("<HH" if header == 12 else "<ii", data, 18)  # OS/2 core header: unsigned 16-bit sizes
    return abs(width), abs(height)  # a negative height means top-down rows


def _gif(data: bytes) -> tuple[int, int]:
    """The logical screen, widened by the first frame's descriptor if that frame reaches beyond it."""
    width, height, flags = _unpack("<HHB", data, 6)
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while True:
        (block,) = _unpack("B", data, i)
        if block == 0x2C:
            left, top, frame_w, frame_h = _unpack("<HHHH", data, i + 1)
            return max(width, left + frame_w), max(height, top + frame_h)
        if block != 0x21:
            return width, height  # trailer or junk: no frame to widen the screen
        i += 2
        while (size := _unpack("B", data, i)[0]) != 0:
            i += size + 1
        i += 1


def _pnm(data: bytes) -> tuple[int, int]:
    """PBM/PGM/PPM (P1-P6) and PFM (Pf, PF): width and height are the first two numbers after the magic."""
    numbers = []
    position = 2
    for _ in range(2):
        match = PNM_NUMBER.match(data, position)
        if match is None:
            raise ValueError("PNM header without width and height")
        numbers.append(int(match.group(1)))
        position = match.end()
    return numbers[0], numbers[1]


def _pam(data: bytes) -> tuple[int, int]:
    header = data[: data.find(b"ENDHDR")] if b"ENDHDR" in data else b""
    fields = dict(re.findall(rb"^\s*(WIDTH|HEIGHT)\s+(\d+)", header, re.MULTILINE))
    if b"WIDTH" not in fields or b"HEIGHT" not in fields:
        raise ValueError("PAM header without WIDTH, HEIGHT and ENDHDR")
    return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])


def _sun_raster(data: bytes) -> tuple[int, int]:
    return _unpack(">II", data, 4)


def _radiance(data: bytes) -> tuple[int, int]:
    """The resolution line after the blank line that ends a Radiance HDR header: ``-Y H +X W``, the one OpenCV reads."""
    end = data.find(b"\n\n")
    match = RADIANCE_SIZE.match(data, end + 2) if end >= 0 else None
    if match is None:
        raise ValueError("Radiance HDR header without a '-Y H +X W' resolution line")
    return int(match.group(2)), int(match.group(1))


#: (first bytes, parser) in the order OpenCV's decoders claim a file.
PARSERS: list[tuple[tuple[bytes, ...], Callable[[bytes], tuple[int, int]]]] = [
    ((b"\x89PNG\r\n\x1a\n",), _png),
    ((b"\xff\xd8",), _jpeg),
    ((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), _tiff),
    ((b"RIFF",), _webp),
    ((b"BM",), _bmp),
    ((b"GIF87a", b"GIF89a"), _gif),
    ((b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"Pf", b"PF"), _pnm),
    ((b"P7",), _pam),
    ((b"\x59\xa6\x6a\x95",), _sun_raster),
    ((b"#?RADIANCE", b"#?RGBE"), _radiance),
]
#: What the error message offers when a file is in none of them.
READABLE = "PNG, JPEG, TIFF, WebP, BMP, GIF, PPM/PGM/PBM/PAM/PFM, Sun raster or Radiance HDR"


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) the header declares; ValueError if the header is cut short or the format is not one of ``READABLE``."""
    for magics, parser in PARSERS:
        if data.startswith(magics):
            return parser(data)
    raise ValueError(f"not a format this tool reads; expected {READABLE}")
