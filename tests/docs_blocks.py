"""Fenced code blocks of the docs, by language, in order."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str, path: Path = GUIDE) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def shell_commands(path: Path = GUIDE) -> list[str]:
    return [line.strip() for body in blocks("shell", path) for line in body.splitlines() if line.strip()]
