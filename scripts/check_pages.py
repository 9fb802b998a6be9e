"""Load every built chapter page in headless Chromium and fail on what a reader would see broken.

    python scripts/check_pages.py _build/test/_build/html     # make test runs this

For each page (the book's front page and ``book/*.html``) Chromium renders the page offline, runs
its scripts for a while (``--virtual-time-budget``) and dumps the resulting DOM; its console goes
to stderr. A page fails when

* math is left unrendered: a ``math`` element still holding raw TeX (``\\(``, ``\\[``, ``$$``),
  or a MathJax error box (``mjx-merror``);
* a widget was not rendered: the text "Loading widget..." remains;
* an image cannot load: an ``<img>`` whose file is missing, or that points off the machine
  (the book must render offline);
* the console reports an error: an uncaught exception, a resource that failed to load, or a
  message that says ``Error``.

Exit status 1 lists every problem, page by page; 2 when Chromium is missing (Debian: ``apt
install chromium``; or set ``$CHROMIUM`` to its path).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

#: Milliseconds of page time Chromium grants scripts (MathJax, the widget manager) before dumping.
VIRTUAL_TIME_MS = 15_000
#: Wall-clock seconds one page may take before it counts as a failure.
PAGE_TIMEOUT_S = 120
#: Chromium flags: headless, offline, no GPU or sandbox (containers), console on stderr.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--allow-file-access-from-files", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                  "--enable-logging=stderr", "--v=0", "--dump-dom"]
#: Console lines that are problems (Chromium logs page console messages as ``CONSOLE(line)``).
CONSOLE_ERROR = re.compile(r"Uncaught|Failed to load|ERR_|\bError\b|error:", re.IGNORECASE)
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$")


class _Page(HTMLParser):
    """Collects what the checks need from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.images, self.math_raw, self.math_errors, self.text = [], 0, 0, []
        self._math_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        if tag == "mjx-merror":
            self.math_errors += 1
        classes = (attrs.get("class") or "").split()
        if self._math_depth or "math" in classes:
            self._math_depth += 1

    def handle_endtag(self, tag):
        if self._math_depth:
            self._math_depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self._math_depth and RAW_TEX.search(data):
            self.math_raw += 1


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        print("check_pages: Chromium not found (Debian: apt install chromium; or set $CHROMIUM)", file=sys.stderr)
        sys.exit(2)  # the exit status the module docstring promises
    return path


def check_page(browser: str, page: Path) -> list:
    """Problems found on one page, as sentences."""
    try:
        run = subprocess.run([browser, *CHROMIUM_FLAGS, page.resolve().as_uri()], capture_output=True,
                             text=True, timeout=PAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return [f"did not finish rendering within {PAGE_TIMEOUT_S} s"]
    problems = problems_in(run.stdout, run.stderr, page)
    if not run.stdout.strip():
        problems.insert(0, f"Chromium returned no page (exit {run.returncode})")
    return problems


def problems_in(dom: str, console: str, page: Path) -> list:
    """Problems in a rendered page's DOM and its console output (Chromium's stderr)."""
    parsed = _Page()
    parsed.feed(dom)
    problems = []
    if parsed.math_raw:
        problems.append(f"{parsed.math_raw} math element(s) left as raw TeX")
    if parsed.math_errors:
        problems.append(f"{parsed.math_errors} MathJax error(s)")
    if "Loading widget" in "".join(parsed.text):
        problems.append('a widget shows "Loading widget..." instead of its snapshot')
    for src in parsed.images:
        url = urlparse(src)
        if url.scheme == "data":
            continue
        if url.scheme in ("http", "https"):
            problems.append(f"image {src} is not on this machine")
            continue
        target = Path(unquote(url.path)) if url.scheme == "file" else page.parent / unquote(url.path)
        if not target.is_file():
            problems.append(f"image {src} is missing")
    for line in console.splitlines():
        if "CONSOLE" in line and CONSOLE_ERROR.search(line):
            problems.append("console: " + line.split("]", 1)[-1].strip()[:300])
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path, help="the built book's html folder")
    args = parser.parse_args(argv)
    pages = [p for p in [args.html / "index.html", args.html / "book" / "intro.html"] if p.is_file()]
    pages += sorted(p for p in (args.html / "book").glob("*.html") if p.name != "intro.html")
    if len(pages) < 2:
        print(f"check_pages: no chapter pages under {args.html}; build the book first", file=sys.stderr)
        return 1
    browser, failed = chromium(), 0
    for page in pages:
        problems = check_page(browser, page)
        name = page.relative_to(args.html)
        if problems:
            failed += 1
            print(f"FAIL {name}", *problems, sep="\n  ")
        else:
            print(f"ok   {name}")
    if failed:
        print(f"{failed} of {len(pages)} page(s) have problems", file=sys.stderr)
        return 1
    print(f"all {len(pages)} pages render: math, widgets, images, console")
    return 0


if __name__ == "__main__":
    sys.exit(main())
