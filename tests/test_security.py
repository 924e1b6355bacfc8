"""No code path can unpickle: the sources are scanned for every loader that would."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNPICKLERS = [
    re.compile(r"\bpickle\.(loads?|Unpickler)\b"),
    re.compile(r"\b(cloudpickle|dill|joblib)\.load"),
    re.compile(r"\btorch\.load\("),
    re.compile(r"allow_pickle\s*=\s*True"),
    re.compile(r"\bpd\.read_pickle\b|\.read_pickle\("),
    re.compile(r"\bnp\.load\((?![^)]*allow_pickle=False)"),
]


#: The one allowed checkpoint read: shipped ImageNet weights, hash-checked first, through the restricted loader.
ALLOWED = {("apptool/imagenet.py", 'source = torch.load(path, map_location="cpu", weights_only=True)')}


def sources():
    for root in ("apptool", "plugins", "demos", "benchmarks"):
        yield from (REPO / root).rglob("*.py")


def test_no_source_can_unpickle():
    offenders, allowed = [], []
    for path in sources():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(p.search(line) for p in UNPICKLERS):
                code = line.split("#")[0].strip()
                where = (path.relative_to(REPO).as_posix(), code)
                (allowed if where in ALLOWED else offenders).append(f"{where[0]}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    assert len(allowed) == len(ALLOWED), f"the allowed read must occur exactly once: {allowed}"


def test_demo_binds_to_localhost_by_default():
    import inspect

    from apptool import cli

    host = inspect.signature(cli.demo).parameters["host"].default
    assert host.default == "127.0.0.1"
