"""Shared pieces of the property-based tests: how valid files are mangled, and what a clean failure is.

A property writes a valid file, mangles it with these strategies (truncated,
spliced or overwritten bytes; swapped, dropped, extra or injected fields;
NaN / inf / empty / absurd values; other encodings and line ends; paths that
climb out of the data folder) and hands it to :func:`outcome`, which accepts a
result or an AppToolError naming the file, and fails on anything else,
including a call that runs past :data:`HANG_SECONDS`.
"""

from __future__ import annotations

import json
import os
import re
import signal
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from apptool.errors import AppToolError

#: Examples per property; raise it (APPTOOL_PROPERTY_EXAMPLES=2000) for a deeper search than the test suite's.
EXAMPLES = int(os.environ.get("APPTOOL_PROPERTY_EXAMPLES", 100))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
#: A call that has used this much CPU time on an input of a few kilobytes is taken to hang (CPU time, not wall
#: time, so a test starved by a busy machine does not count as hanging; a reader that hangs spins).
HANG_SECONDS = 30

#: Values that break naive parsers: non-finite and absurd numbers, empty and blank fields,
#: look-alike digits, separators and quotes, control and non-ASCII characters, escaping paths.
TOKENS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e999",
    "-1e999",
    "",
    " ",
    "?",
    "-",
    "--1",
    "+1",
    "\u00b2",
    "\u0661",
    "0x1F",
    "1_000",
    "99999999999999999999",
    "-99999999999999999999",
    "1e-400",
    "3.5e38",
    "null",
    "true",
    "\x00",
    "caf\u00e9",
    "\ufeff",
    '"',
    "'",
    "#",
    "@data",
    ":",
    ",",
    "\t",
    ";",
    "(1,2)",
    "../outside.png",
    "../../outside.jpg",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "..\\..\\outside.jpg",
    "x" * 300,
]
TOKEN = st.one_of(st.sampled_from(TOKENS), st.text(max_size=12), st.floats().map(repr), st.integers().map(str))
ENCODINGS = ["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]
#: Outcomes seen, by reader: {message shape (digits as N) or "(a valid result)": [count, one real message]}.
MESSAGES: dict[str, dict[str, list]] = {}


class Hang(BaseException):
    """A call ran past HANG_SECONDS (a BaseException, so no reader's ``except Exception`` swallows it)."""


@contextmanager
def time_limit(seconds: float = HANG_SECONDS):
    def expired(signum, frame):
        raise Hang(f"still running after {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def outcome(reader: str, call, named: str | re.Pattern, root: Path | None = None, expected: type[AppToolError] = AppToolError):
    """``call()``'s result, or None after an ``expected`` error whose message names ``named`` (text or pattern)."""
    with time_limit():
        try:
            result = call()
        except AppToolError as exc:
            message = str(exc)
            assert isinstance(exc, expected), f"{type(exc).__name__}, not {expected.__name__}: {message}"
            found = named.search(message) if isinstance(named, re.Pattern) else named in message
            assert found, f"the error does not name {named!r}: {message}"
            shown = message.replace(str(root), "DIR") if root else message
            seen = MESSAGES.setdefault(reader, {}).setdefault(re.sub(r"\d+", "N", shown)[:160], [0, shown[:300]])
            seen[0] += 1
            return None
    MESSAGES.setdefault(reader, {}).setdefault("(a valid result)", [0, ""])[0] += 1
    return result


def write_messages() -> None:
    """Write the messages seen so far to $APPTOOL_PROPERTY_MESSAGES (JSON), when it is set."""
    target = os.environ.get("APPTOOL_PROPERTY_MESSAGES")
    if target:
        Path(target).write_text(json.dumps(MESSAGES, indent=1, ensure_ascii=False))


def inside(path: Path, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def decoded(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


# -- mutations of valid text files ------------------------------------------------------------
def _split(line: str, sep: str | None) -> list[str]:
    return line.split(sep) if sep else [line]


def _join(fields: list[str], sep: str | None) -> str:
    return (sep or "").join(fields)


@st.composite
def mangled_lines(draw, lines: list[str], sep: str | None, paths: tuple[str, ...] = ()) -> list[str]:
    """1-3 line/field edits of a file's lines: inject, insert, swap, drop, duplicate, escape a path."""
    lines = list(lines)
    ops = ["inject", "insert", "swap", "drop_field", "extra", "dup_line", "drop_line", "swap_lines", "new_line", "blank"]
    ops += ["escape"] * 2 if paths else []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(ops))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            lines = [""]
        fields = _split(lines[i], sep)
        j = draw(st.integers(0, len(fields) - 1))
        if op == "inject":
            fields[j] = draw(TOKEN)
        elif op == "insert":
            fields.insert(j, draw(TOKEN))
        elif op == "swap":
            k = draw(st.integers(0, len(fields) - 1))
            fields[j], fields[k] = fields[k], fields[j]
        elif op == "drop_field" and len(fields) > 1:
            del fields[j]
        elif op == "extra":
            fields += draw(st.lists(TOKEN, min_size=1, max_size=3))
        elif op == "dup_line":
            lines.insert(i, lines[i])
        elif op == "drop_line":
            del lines[i]
            continue
        elif op == "swap_lines":
            k = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
            continue
        elif op == "new_line":
            lines.insert(i, draw(st.one_of(st.text(max_size=40), st.lists(TOKEN, max_size=8).map(lambda t: _join(t, sep)))))
            continue
        elif op == "blank":
            lines.insert(i, draw(st.sampled_from(["", "  ", "\t", " \x0b "])))
            continue
        elif op == "escape":
            target = draw(st.sampled_from(paths))
            climb = draw(st.sampled_from(["../", "../../", "../../../", "..\\..\\", "sub/../../", "/", "./../"]))
            lines = [line.replace(target, climb + target.split("/")[-1], 1) for line in lines]
            continue
        lines[i] = _join(fields, sep)
    return lines


@st.composite
def mangled_bytes(draw, data: bytes) -> bytes:
    """Truncated, spliced or overwritten bytes (or the bytes unchanged)."""
    op = draw(st.sampled_from(["keep", "keep", "truncate", "splice", "overwrite"]))
    at = draw(st.integers(0, len(data)))
    if op == "truncate":
        return data[:at]
    if op == "splice":
        return data[:at] + draw(st.binary(min_size=1, max_size=24)) + data[at:]
    if op == "overwrite":
        junk = draw(st.binary(min_size=1, max_size=8))
        return data[:at] + junk + data[at + len(junk) :]
    return data


@st.composite
def mangled_text(draw, text: str, sep: str | None, paths: tuple[str, ...] = ()) -> bytes:
    """A text file after line edits, another line end, another encoding and byte damage."""
    lines = text.split("\n")
    if draw(st.integers(0, 9)):  # one case in ten keeps the lines (only the encoding and bytes change)
        lines = draw(mangled_lines(lines, sep, paths))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    encoding = draw(st.sampled_from(ENCODINGS))
    return draw(mangled_bytes(newline.join(lines).encode(encoding, errors="replace")))


def bom_crlf(text: str) -> bytes:
    """The same file as Windows tools save it: UTF-8 with a byte-order mark and CR LF line ends."""
    return text.replace("\n", "\r\n").encode("utf-8-sig")
