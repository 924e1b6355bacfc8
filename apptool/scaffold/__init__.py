"""``apptool new-plugin``: a ready-to-install task plugin distribution from one of the templates beside this file.

Every template shares ``templates/common`` (pyproject with the entry point, the
plugin module, the conformance test) and adds its own task, model and README.
"""

from __future__ import annotations

import json
import keyword
import re
from pathlib import Path
from string import Template

from apptool.errors import ConfigError

TEMPLATES = Path(__file__).parent / "templates"
#: Template name -> the distribution's runtime dependencies besides what apptool itself installs.
DEPENDENCIES = {
    "minimal": ["apptool", "scikit-learn"],
    "sequence": ["apptool"],
    "image-classifier": ["apptool"],
}


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


def template_files(template: str) -> dict[Path, Path]:
    """{path inside the plugin (with ``package`` unrenamed): template file}, the template's own files over the common ones."""
    if template not in DEPENDENCIES:
        raise ConfigError(f"--template {template!r}: choose one of {', '.join(DEPENDENCIES)}")
    files = {}
    for folder in (TEMPLATES / "common", TEMPLATES / template):
        files.update({source.relative_to(folder).with_suffix(""): source for source in sorted(folder.rglob("*.tmpl"))})
    return files


def create_plugin(name: str, parent: Path, template: str = "minimal") -> Path:
    """Write the plugin distribution to ``parent/<dist>`` and return that folder."""
    names = {**names_for(name), "dependencies": json.dumps(DEPENDENCIES.get(template, []))}
    files = template_files(template)
    target = Path(parent) / names["dist"]
    if target.exists():
        raise ConfigError(f"{target}: already exists; choose another --dir or name")
    for relative, source in files.items():
        parts = [names["package"] if p == "package" else p for p in relative.parts]
        destination = target.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(Template(source.read_text()).substitute(names))
    return target
