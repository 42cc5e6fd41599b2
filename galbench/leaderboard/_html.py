"""``leaderboard/index.html``: one self-contained page (inline CSS, a small inline sort script,
inline SVG plots; nothing fetched from anywhere)."""

from __future__ import annotations

from html import escape

from galbench.leaderboard import _format as F
from galbench.leaderboard import _tables as T
from galbench.leaderboard._model import MAG_STRATUM, Leaderboard, TaskBoard
from galbench.leaderboard._plot import Series, render_svg
from galbench.leaderboard._receipts import CHALLENGE, LAYOUT, RECEIPTS_DIR
from galbench.leaderboard.tiers import TIER_RULE

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
       margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 1400px; }
h1 { font-size: 1.7rem; margin: 0 0 .5rem; }
h2 { font-size: 1.3rem; margin-top: 2.5rem; border-bottom: 1px solid #d0d7de;
     padding-bottom: .3rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       background: #f3f4f6; padding: 0 .25em; border-radius: 3px; }
a { color: #0969da; }
.note { color: #57606a; max-width: 75em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; white-space: nowrap; }
td { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td:last-child { white-space: normal; min-width: 14em; }
tbody tr:nth-child(even) { background: #fafbfc; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #afb8c1; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; color: #1b1f24; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; color: #1b1f24; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; letter-spacing: .03em;
         text-transform: uppercase; color: #fff; background: #8250df; border-radius: 1em;
         padding: .05em .7em; vertical-align: middle; }
figure { margin: 1rem 0; }
figure svg { width: 100%; max-width: 960px; height: auto; }
figcaption { color: #57606a; font-size: 12px; }
ul.compact { padding-left: 1.2rem; }
ul.compact li { margin: .15rem 0; }
"""

# Click a header to sort by that column (again: reverse). Cells sort by their data-sort value when
# they have one (numbers compare as numbers; "" = missing, always last), else by their text. The
# query string ?sort=<table id>:<column index>[:desc] clicks that header once (twice for desc) on
# load, so that a link can open the page sorted and the tests can drive the real click handler.
SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim() : v;
  }
  function compare(a, b) {
    var x = Number(a), y = Number(b);
    if (a !== "" && b !== "" && !isNaN(x) && !isNaN(y)) return x - y;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function sortTable(table, column, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return { row: row, key: key(row.cells[column]), i: i };
    });
    rows.sort(function (p, q) {
      if ((p.key === "") !== (q.key === "")) return p.key === "" ? 1 : -1;
      var c = compare(p.key, q.key);
      return (descending ? -c : c) || p.i - q.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === column) th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    table.setAttribute("data-sorted", column + (descending ? ":desc" : ":asc"));
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      function activate() {
        sortTable(table, i, th.getAttribute("aria-sort") === "ascending");
      }
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(); }
      });
    });
  });
  var m = /[?&]sort=([^&]+)/.exec(window.location.search);
  if (m) {
    var spec = decodeURIComponent(m[1]).split(":");
    var table = document.getElementById(spec[0]);
    var th = table && table.tHead.rows[0].cells[parseInt(spec[1], 10)];
    if (th) { th.click(); if (spec[2] === "desc") th.click(); }
  }
})();
"""


def _parts(parts: T.Parts) -> str:
    return "".join(
        f'<a href="{escape(T.href(p.href))}">{escape(p.text)}</a>' if p.href else escape(p.text)
        for p in parts
    )


def _table(table: T.Table) -> list[str]:
    out = [
        '<div class="scroll">',
        f'<table class="sortable" id="{escape(table.id)}">',
        "<thead><tr>",
    ]
    out += [f'<th scope="col">{escape(c.title)}</th>' for c in table.columns]
    out += ["</tr></thead>", "<tbody>"]
    for row in table.rows:
        cells = []
        for column, cell in zip(table.columns, row):
            attrs = ' class="num"' if column.numeric else ""
            if cell.sort is not None:
                attrs += f' data-sort="{escape(cell.sort)}"'
            cells.append(f"<td{attrs}>{_parts(cell.parts)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>", "</div>"]
    return out


def _plots(task: TaskBoard) -> list[str]:
    out = []
    view = task.view
    for split in task.public_splits + ((CHALLENGE,) if task.challenge else ()):
        board = task.splits[split]
        series = []
        for standing in board.standings:
            rows = (board.records[standing.name].receipt.get("strata") or {}).get(MAG_STRATUM)
            if not isinstance(rows, list) or not rows:
                continue
            series.append(
                Series(
                    label=f"{standing.name} (tier {standing.tier})",
                    bins=tuple(str(r.get("bin")) for r in rows),
                    values=tuple(
                        v
                        if F.is_number(v := (r.get("metrics") or {}).get(view.main_metric))
                        else None
                        for r in rows
                    ),
                )
            )
        if not series:
            continue
        svg = render_svg(
            series,
            title=f"{view.id} · {split}: {view.main_metric} by {view.mag_label}",
            xlabel=view.mag_label,
            ylabel=f"{view.main_metric} ({F.direction_words(view.direction)})",
            prefix=f"plot-{T.slug(view.id)}-{T.slug(split)}",
        )
        out += [
            "<figure>",
            svg,
            (
                f"<figcaption>{escape(view.main_metric)} per {escape(view.mag_label)} bin on split "
                f"<code>{escape(split)}</code>, one line per ranked entry (from each receipt's "
                f"<code>strata.{MAG_STRATUM}</code>); gaps are empty bins.</figcaption>"
            ),
            "</figure>",
        ]
    return out


def _task(task: TaskBoard) -> list[str]:
    view = task.view
    about = []
    if view.task_file:
        about.append(
            f'Task file: <a href="../{escape(view.task_file)}">'
            f"<code>{escape(view.task_file)}</code></a>"
        )
    about.append(
        f"main metric: <code>{escape(view.main_metric)}</code> "
        f"({F.direction_words(view.direction)})"
    )
    if task.ranking_split:
        size = view.split_sizes.get(task.ranking_split)
        about.append(
            f"ranked on split <code>{escape(task.ranking_split)}</code>"
            + (f" (n = {size:,})" if size else "")
        )
    out = [
        f'<section id="{T.slug(view.id)}">',
        f"<h2>{escape(view.title)} <code>{escape(view.id)}</code></h2>",
        f'<p class="note">{" · ".join(about)}.</p>',
    ]
    out += _table(T.main_table(task)) if task.rows else ["<p>No ranked entries yet.</p>"]
    for caption, table in T.supplementary_tables(task):
        text = "".join(f"<code>{escape(piece)}</code>" if code else escape(piece) for piece, code in caption)
        out += [f'<p class="note">{text}</p>', *_table(table)]
    challenge = T.challenge_table(task)
    if challenge is not None:
        out += [
            f'<h3><span class="badge">{CHALLENGE}</span> hidden split</h3>',
            (
                '<p class="note">Scored by the organisers on the hidden challenge split '
                "(secret seed, code submissions only); re-checking these receipts needs the "
                "seed.</p>"
            ),
            *_table(challenge),
        ]
    not_ranked = T.not_ranked_lines(task)
    if not_ranked:
        out += ["<p><strong>Not ranked:</strong></p>", '<ul class="compact">']
        out += [f"<li>{_parts(parts)}</li>" for parts in not_ranked] + ["</ul>"]
    out += _plots(task)
    out += ["<details><summary>Receipts</summary>", '<ul class="compact">']
    out += [f"<li>{_parts(parts)}</li>" for parts in T.receipt_lines(task)]
    out += ["</ul>", "</details>", "</section>"]
    return out


def render_html(board: Leaderboard) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="galbench leaderboard">',
        "<title>galbench leaderboard</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<h1>galbench leaderboard</h1>",
        (
            f'<p class="note">Built only from the receipts in <a href="{RECEIPTS_DIR}/"><code>'
            f"{RECEIPTS_DIR}/</code></a> (<code>{escape(LAYOUT)}</code>) by <code>galbench "
            "leaderboard</code>; <code>galbench leaderboard --check</code> fails when this page, "
            '<a href="README.md">README.md</a> or <a href="leaderboard.csv">leaderboard.csv</a> '
            "differs from what the receipts give, or when a receipt does not verify. Click a "
            "column header to sort.</p>"
        ),
        (
            f'<p class="note"><strong>Tiers.</strong> {escape(TIER_RULE)} Partial and failed runs '
            "are never ranked.</p>"
        ),
    ]
    if len(board.tasks) > 1:
        out.append(
            "<nav><p>Tasks: "
            + " · ".join(
                f'<a href="#{T.slug(t.view.id)}">{escape(t.view.id)}</a>' for t in board.tasks
            )
            + "</p></nav>"
        )
    if not board.tasks:
        out.append("<p>No receipts yet.</p>")
    for task in board.tasks:
        out += _task(task)
    out += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
