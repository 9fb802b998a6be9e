"""The book's own tools: the chapter/notebook drift check (scripts/chapters.py) and the page
check (scripts/check_pages.py), on made-up input (no browser, no book build)."""

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name):
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chapters():
    pytest.importorskip("jupytext")
    return load("chapters")


def test_a_save_without_an_edit_passes_the_drift_check_and_an_edit_does_not(chapters):
    md = chapters.chapter_sources()[0]
    expected = chapters.expected_files(md, chapters.repository_url())
    md_text, nb_text = expected[md], expected[md.with_suffix(".ipynb")]
    # What JupyterLab writes on save: a kernelspec of its own; outputs and counts in a run .ipynb.
    saved_md = md_text.replace("display_name: Python 3\n", "display_name: Python 3 (ipykernel)\n")
    nb = nbformat.reads(nb_text, 4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
            cell.execution_count = 1
    nb.metadata["language_info"] = {"name": "python"}
    ipynb = md.with_suffix(".ipynb")
    assert saved_md != md_text
    assert chapters.cells(saved_md, md) == chapters.cells(md_text, md)
    assert chapters.cells(nbformat.writes(nb), ipynb) == chapters.cells(nb_text, ipynb)
    edited = md_text.replace("import vsml_lite as vl", "import vsml_lite as vsml", 1)
    assert chapters.cells(edited, md) != chapters.cells(md_text, md)


def test_install_cell_names_the_url_when_pip_fails(chapters):
    source = chapters.INSTALL_SOURCE.format(url="https://example.invalid/repo")
    compile(source, "install-cell", "exec")
    assert "raise RuntimeError" in source and "{PACKAGE}" in source


def test_page_check_finds_what_a_reader_would_see_broken(tmp_path):
    check = load("check_pages")
    (tmp_path / "ok.png").write_bytes(b"png")
    page = tmp_path / "chapter.html"
    good = '<div><span class="math"><mjx-container>x</mjx-container></span><img src="ok.png"></div>'
    assert check.problems_in(good, "[1:INFO:CONSOLE(3)] \"ready\", source: x", page) == []
    bad = ('<span class="math notranslate">\\(x^2\\)</span><mjx-merror></mjx-merror>'
           '<p>Loading widget...</p><img src="gone.png"><img src="https://cdn.example/x.png">')
    console = '[1:INFO:CONSOLE(7)] "Uncaught TypeError: x is undefined", source: file:///a.js (7)'
    found = " | ".join(check.problems_in(bad, console, page))
    for words in ("raw TeX", "MathJax error", "Loading widget", "gone.png is missing", "not on this machine",
                  "Uncaught TypeError"):
        assert words in found, words


#: Longest code line a reader sees without scrolling sideways: a code block at 1280 px shows
#: about 77 ASCII characters, fewer with wide glyphs such as Σ (Chromium screenshots of the
#: built book), so 76.
VISIBLE_LINE = 76
#: Cell tags that fold or remove a cell's code from the page.
FOLDED = {"remove-cell", "hide-input", "remove-input", "hide-cell"}


def test_visible_code_fits_the_page(chapters):
    """Code a reader sees fits the page; cells that only assemble results text are folded
    (hide-input), so a reader can still open them."""
    import jupytext

    too_long = []
    for md in chapters.chapter_sources():
        for i, cell in enumerate(jupytext.read(md).cells):
            if cell.cell_type != "code" or FOLDED & set(cell.metadata.get("tags", [])):
                continue
            too_long += [f"{md.name} cell {i}: {line[:60]}..." for line in cell.source.splitlines()
                         if len(line) > VISIBLE_LINE]
    assert not too_long, "\n".join(too_long)


def test_every_figure_is_numbered_and_captioned(chapters):
    """A cell that shows a figure or an explorer is followed by its caption, "*Figure C.k...",
    numbered in order within chapter C."""
    import jupytext

    problems = []
    for md in chapters.chapter_sources():
        chapter = int(md.name[:2])
        cells, expected = jupytext.read(md).cells, 1
        for i, cell in enumerate(cells):
            shows = cell.cell_type == "code" and ("plt.show()" in cell.source or "explorer(" in cell.source)
            if not shows:
                continue
            following = cells[i + 1].source if i + 1 < len(cells) else ""
            number = re.match(rf"\*Figure {chapter}\.(\d+)", following)
            if not number:
                problems.append(f"{md.name} cell {i}: no '*Figure {chapter}.{expected}' caption after it")
            elif int(number.group(1)) != expected:
                problems.append(f"{md.name} cell {i}: Figure {chapter}.{number.group(1)}, expected {expected}")
            expected += 1
    assert not problems, "\n".join(problems)


def test_figures_drawn_in_a_chapter_span_the_page_and_no_more(chapters):
    """The package's figures are checked for legible text (tests/test_figure_text.py); a
    figure a chapter lays out itself takes its width from ``vl.viz.PAGE_WIDTH``, so its text
    is not shrunk on the page."""
    sizes = [(md.name, m.group(0)) for md in chapters.chapter_sources()
             for m in re.finditer(r"figsize=\(([^,]+),", md.read_text())
             if m.group(1).strip() != "vl.viz.PAGE_WIDTH"]
    assert not sizes, sizes


def test_cpu_benchmark_counts_transcendentals_and_saved_bytes():
    """The bound columns of scripts/benchmark_cpu.py: one count per output element of a
    transcendental op (none for a matrix product), and each tensor autograd saves counted once."""
    import torch

    bench = load("benchmark_cpu")
    x, w = torch.randn(5, 3), torch.randn(3, 4)
    with bench.TranscendentalCounter() as counter:
        y = torch.sigmoid(x @ w)  # 20 sigmoids; the product counts nothing
        torch.tanh(y).exp()  # 20 + 20
        torch.softmax(y, dim=1)  # an exp per element: 20
        (y * 2).relu()  # not transcendental
    assert counter.count == 80

    w.requires_grad_(True)

    class Task:  # the one method saved_bytes calls
        def step(self, iteration):
            (torch.sigmoid(x @ w) ** 2).sum().backward()

    # x @ w saves x (60 B; w only if x needed a gradient); sigmoid saves its output and the
    # square its input, one tensor (80 B), counted once
    assert bench.saved_bytes(Task(), 0) == 60 + 80


def _load_extension(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "book" / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _MissedWakeUpSocket:
    """A kernel socket whose message arrived before the first poll, which misses its wake-up
    and returns empty at its timeout (what pyzmq's asyncio poller does now and then); any
    later poll sees the message."""

    def __init__(self):
        self.polls = []  # the timeout (ms) of each poll

    async def poll(self, timeout_ms):
        self.polls.append(timeout_ms)
        return len(self.polls) > 1


class _Channel:
    def __init__(self, socket):
        self.socket = socket

    async def _recv(self):
        return {"msg_type": "execute_reply"}


def test_the_book_build_waits_for_kernel_messages_in_slices(monkeypatch):
    """book/_ext/kernel_poll.py: a wait of 600 s polls in slices of at most POLL_SLICE_SECONDS,
    so a missed wake-up is seen at the next slice, not at the timeout; with no message the
    wait ends with Empty once the timeout passes."""
    import asyncio
    from queue import Empty

    pytest.importorskip("jupyter_client")
    kernel_poll = _load_extension("kernel_poll")
    socket = _MissedWakeUpSocket()
    assert asyncio.run(kernel_poll.sliced_get_msg(_Channel(socket), timeout=600)) == {"msg_type": "execute_reply"}
    assert socket.polls == [1000 * kernel_poll.POLL_SLICE_SECONDS] * 2  # not one poll of 600,000 ms
    socket = _MissedWakeUpSocket()
    assert asyncio.run(kernel_poll.sliced_get_msg(_Channel(socket), timeout=None))["msg_type"] == "execute_reply"

    class Silent(_MissedWakeUpSocket):
        async def poll(self, timeout_ms):
            self.polls.append(timeout_ms)
            await asyncio.sleep(timeout_ms / 1000)
            return 0

    monkeypatch.setattr(kernel_poll, "POLL_SLICE_SECONDS", 0.02)
    silent = Silent()
    with pytest.raises(Empty):
        asyncio.run(kernel_poll.sliced_get_msg(_Channel(silent), timeout=0.1))
    # every poll waits its whole slice (none spins at 0 ms), so 0.1 s holds at most 6 of 20 ms
    assert 1 <= len(silent.polls) <= 6 and 0 < min(silent.polls) and max(silent.polls) <= 20
    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    try:
        assert kernel_poll.patch() and AsyncZMQSocketChannel.get_msg is kernel_poll.sliced_get_msg
    finally:
        AsyncZMQSocketChannel.get_msg = original
