"""A pip install (Colab's) takes exactly the packages pyproject.toml lists: every package of
vsml_lite must be there, or the installed book fails at its first import."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


#: The shipped artifacts' folder: package data without an __init__.py, listed so setuptools keeps it.
DATA_PACKAGE = "vsml_lite.pretrained"


def test_every_subpackage_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vsml_lite").rglob("__init__.py")}
    found.add(DATA_PACKAGE)
    assert found == listed, f"packages on disk {sorted(found)} but pyproject.toml lists {sorted(listed)}"
