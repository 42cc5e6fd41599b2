"""``leaderboard/index.html`` rendered by a real browser (headless Chromium): the tables are
there, the plots render, and clicking a header sorts the table, numbers as numbers.

Needs Debian's Chromium (``apt-get install -y chromium``); skipped, saying so, without it.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_leaderboard import example_board

from galbench.leaderboard import write_leaderboard

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian: apt-get install -y chromium)",
)
MAIN = "morphometry-1-main"


class _Tables(HTMLParser):
    """Cell texts of every table's body rows, by table id, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headers: dict[str, list[dict[str, str | None]]] = {}
        self.svgs = 0
        self._table: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        elif tag == "table":
            self._table = attrs.get("id") or ""
            self.tables[self._table] = []
            self.headers[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "th" and self._table is not None:
            self.headers[self._table].append(attrs)
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _dom(tmp_path: Path, url: str) -> _Tables:
    parser = _Tables()
    parser.feed(_chromium(tmp_path, "--dump-dom", url).stdout)
    return parser


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("leaderboard")
    example_board(root)
    write_leaderboard(root)
    return root / "index.html"


def test_the_page_renders_its_tables_and_plots(page, tmp_path):
    dom = _dom(tmp_path, page.as_uri())
    main = dom.tables[MAIN]
    assert [row[:2] for row in main] == [
        ["1 (tier 1)", "cnn-big (code)"],
        ["2 (tier 1)", "cnn-small"],
        ["3 (tier 2)", "sersic-fit"],
        ["4 (tier 3)", "floor"],
    ]
    assert main[0][2].startswith("0.1000 [0.09") and main[3][9] == "100,000"
    assert [row[:2] for row in dom.tables["morphometry-1-challenge"]] == [["1 (tier 1)", "cnn-big"]]
    assert dom.svgs == 3  # test, real_test, challenge

    png = tmp_path / "page.png"
    _chromium(tmp_path, f"--screenshot={png}", "--window-size=1200,900", page.as_uri())
    from matplotlib.image import imread

    pixels = imread(png)
    assert pixels.shape[:2] == (900, 1200)
    assert (pixels[..., :3] < 0.5).any(axis=-1).mean() > 0.005  # text and lines, not a blank page


def _column(dom: _Tables, column: int) -> list[str]:
    return [row[column] for row in dom.tables[MAIN]]


def test_clicking_a_header_sorts_by_that_column(page, tmp_path):
    # Entry names, ascending.
    dom = _dom(tmp_path, page.as_uri() + f"?sort={MAIN}:1")
    assert _column(dom, 1) == ["cnn-big (code)", "cnn-small", "floor", "sersic-fit"]
    assert dom.headers[MAIN][1].get("aria-sort") == "ascending"
    # The main metric, descending (a second click reverses).
    dom = _dom(tmp_path, page.as_uri() + f"?sort={MAIN}:2:desc")
    assert _column(dom, 1) == ["floor", "sersic-fit", "cnn-big (code)", "cnn-small"]
    assert dom.headers[MAIN][2].get("aria-sort") == "descending"
    assert dom.headers[MAIN][1].get("aria-sort") is None


def test_numbers_sort_as_numbers_and_missing_values_last(page, tmp_path):
    # Parameters: 45k before 1.23M (as text "1234567.0" < "45000.0"); entries without one last,
    # in their previous order, whichever the direction.
    dom = _dom(tmp_path, page.as_uri() + f"?sort={MAIN}:7")
    assert _column(dom, 7) == ["45k", "1.23M", "–", "–"]
    assert _column(dom, 1)[2:] == ["sersic-fit", "floor"]
    dom = _dom(tmp_path, page.as_uri() + f"?sort={MAIN}:7:desc")
    assert _column(dom, 7) == ["1.23M", "45k", "–", "–"]
