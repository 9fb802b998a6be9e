"""Keep every chapter's Colab notebook in step with its MyST Markdown source.

Chapters are written as Jupytext MyST Markdown (``book/NN_*.md``, the diff-friendly source).
Beside each one lies ``book/NN_*.ipynb`` without outputs: the file the Colab launch button
opens. This script owns two things:

* the first cell of every chapter, which installs ``vsml_lite`` from the repository URL set
  in ``_config.yml`` (``repository.url``) when the package is not importable;
* the ``.ipynb``, regenerated from the ``.md``.

Usage::

    python scripts/chapters.py sync            # rewrite install cells and notebooks (after editing a .md)
    python scripts/chapters.py check           # exit 1 listing every chapter whose cells drifted (make test)
    python scripts/chapters.py check --strict  # also byte for byte: no outputs, no tool metadata (pre-commit)

``check`` compares cells (type, source, tags), so what JupyterLab rewrites when it saves a
chapter without an edit (the Jupytext header's versions and kernelspec, outputs and execution
counts in a run ``.ipynb``) does not fail ``make test``. ``--strict`` is what the git pre-commit
hook runs (``.githooks/pre-commit``, enabled by ``make setup``): committed files stay exactly as
``sync`` writes them, without outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
#: Tag that marks the install cell; ``remove-cell`` hides it from the rendered book.
INSTALL_TAG = "install-vsml-lite"
INSTALL_TAGS = ["remove-cell", INSTALL_TAG]
INSTALL_SOURCE = """\
# Colab or a fresh environment: install vsml_lite from the book's repository if missing.
import importlib, importlib.util, subprocess, sys
PACKAGE = "git+{url}"  # set by repository.url in _config.yml
if importlib.util.find_spec("vsml_lite") is None:
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", PACKAGE]).returncode != 0:
        raise RuntimeError(f"pip could not install vsml_lite from {{PACKAGE}}: set PACKAGE to the "
                           "published repository (or a local path) and run this cell again")
    importlib.invalidate_caches()"""


def repository_url() -> str:
    """``repository.url`` from ``_config.yml``: the one place the URL is set."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = (config.get("repository") or {}).get("url")
    if not url:
        sys.exit("_config.yml has no repository.url; set it to the book's git repository")
    return url.rstrip("/")


def chapter_sources() -> list[Path]:
    """Every chapter source: ``book/*.md`` files that are Jupytext notebooks."""
    return sorted(p for p in BOOK.glob("*.md") if p.read_text().startswith("---\njupytext:"))


def with_install_cell(nb: nbformat.NotebookNode, url: str) -> nbformat.NotebookNode:
    """``nb`` whose first cell is the install cell for ``url`` (replacing an old one)."""
    cells = [c for c in nb.cells if INSTALL_TAG not in c.get("metadata", {}).get("tags", [])]
    install = nbformat.v4.new_code_cell(INSTALL_SOURCE.format(url=url))
    install.metadata["tags"] = list(INSTALL_TAGS)
    nb.cells = [install] + cells
    return nb


def expected_files(md: Path, url: str) -> dict[Path, str]:
    """The text the chapter's ``.md`` and ``.ipynb`` should have."""
    nb = with_install_cell(jupytext.read(md), url)
    md_text = jupytext.writes(nb, fmt="md:myst")
    nb.metadata.pop("jupytext", None)  # no tool versions in the committed notebook
    for cell in nb.cells:
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.nbformat, nb.nbformat_minor = 4, 4
    return {md: _drop_jupytext_version(md_text), md.with_suffix(".ipynb"): nbformat.writes(nb) + "\n"}


def _drop_jupytext_version(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.lstrip().startswith("jupytext_version:"))


def cells(text: str, path: Path) -> list:
    """What ``check`` compares: each cell's type, source and tags."""
    nb = jupytext.reads(text, fmt="md:myst" if path.suffix == ".md" else "ipynb")
    return [(c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sync", "check"])
    parser.add_argument("--strict", action="store_true", help="check: compare files byte for byte")
    args = parser.parse_args(argv)
    url, drifted = repository_url(), []
    sources = chapter_sources()
    if not sources:
        print("no chapter sources found under book/", file=sys.stderr)
        return 1
    for md in sources:
        for path, text in expected_files(md, url).items():
            current = path.read_text() if path.exists() else None
            if current == text:
                continue
            if args.command == "check" and not args.strict and current is not None \
                    and cells(current, path) == cells(text, path):
                continue  # only what a save without an edit changes
            if args.command == "sync":
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
            else:
                drifted.append(path.relative_to(ROOT))
    if drifted:
        print("out of step with their sources or with repository.url in _config.yml:",
              *drifted, "fix: python scripts/chapters.py sync", sep="\n  ", file=sys.stderr)
        return 1
    print(f"{len(sources)} chapter(s) in step; install cells use {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
