"""``apptool new-plugin``: a ready-to-install task plugin distribution from the template beside this file."""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from apptool.errors import ConfigError

TEMPLATE = Path(__file__).parent / "template"


def names_for(name: str) -> dict[str, str]:
    """Task, package, distribution, class and title names derived from one task name."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ConfigError(f"plugin name {name!r}: use lower-case letters, digits and underscores, starting with a letter")
    words = name.split("_")
    return {
        "name": name,
        "package": f"apptool_{name}",
        "dist": f"apptool-{name.replace('_', '-')}",
        "cls": "".join(w.capitalize() for w in words) + "Task",
        "title": " ".join(words).capitalize(),
    }


def create_plugin(name: str, parent: Path) -> Path:
    """Write the plugin distribution to ``parent/<dist>`` and return that folder."""
    names = names_for(name)
    target = Path(parent) / names["dist"]
    if target.exists():
        raise ConfigError(f"{target}: already exists; choose another --dir or name")
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")
        parts = [names["package"] if p == "package" else p for p in relative.parts]
        destination = target.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(Template(source.read_text()).substitute(names))
    return target
