"""The GPU checks' summary table, printed once at the end of the run (`make test-gpu`)."""

from __future__ import annotations

import pytest

ROWS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def gpu_summary(request) -> list[dict]:
    """Rows of the summary table: each check appends {"check", "task", "figure", "value"}."""
    return request.config.stash.setdefault(ROWS, [])


def pytest_terminal_summary(terminalreporter, config):
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    terminalreporter.section("GPU summary")
    widths = [max(len(str(r[k])) for r in rows + [{k: k for k in rows[0]}]) for k in rows[0]]
    for row in [{k: k for k in rows[0]}] + rows:
        terminalreporter.write_line("  ".join(str(v).ljust(w) for v, w in zip(row.values(), widths)))
