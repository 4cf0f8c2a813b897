"""Writes the reproduction report: `REPORT.md` and a standalone `index.html`.

  files = write_report(sections, "report", scale="cpu", meta={"date": ..., "jax": ...},
                       timings={"lec08": {"compile": 3.1, "train": 20.4, ...}})

Both files hold the same content: run metadata, a summary table of every claim with its
verdict and numbers, where the time went (compile / train / eval / other per experiment,
from `leeml.timing`, when given), then one part per lecture (rerun command, verdicts,
figures, tables, notes). Figures are copied into `<out_dir>/figures/<section>/` and linked relatively, so
the report directory can be moved or published as it is. The HTML has no external
resources (inline CSS) and escapes every piece of text it did not write itself.
"""

import dataclasses
import html
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from typing import Iterable, Mapping, Sequence

from leeml import timing
from leeml.claims import FAIL, PASS, Verdict
from leeml.lectures import Figure, Section

TITLE = "leeml: Hung-yi Lee's ML course, reproduced"


@dataclasses.dataclass(frozen=True)
class Counts:
  claims: int
  passed: int
  failed: int


@dataclasses.dataclass(frozen=True)
class ReportFiles:
  """What `write_report` wrote: the two report files and the copied figures."""
  html: str
  markdown: str
  figures: tuple[str, ...]


def count(sections: Iterable[Section]) -> Counts:
  verdicts = [v for s in sections for v in s.verdicts]
  passed = sum(v.verdict == PASS for v in verdicts)
  return Counts(len(verdicts), passed, len(verdicts) - passed)


def git_commit(repo_dir: str) -> str | None:
  """The checkout's HEAD (short hash, '+dirty' with uncommitted changes), or None."""
  def git(*args):
    return subprocess.run(["git", "-C", repo_dir, *args], capture_output=True, text=True,
                          timeout=10, check=True).stdout.strip()
  try:
    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
  except (OSError, subprocess.SubprocessError):
    return None  # no git, or not a checkout (e.g. an installed wheel)
  return commit + ("+dirty" if dirty else "")


def write_report(sections: Sequence[Section], out_dir: str, *, scale: str,
                 meta: Mapping[str, str] | None = None,
                 timings: Mapping[str, Mapping[str, float]] | None = None) -> ReportFiles:
  """Writes `<out_dir>/REPORT.md`, `<out_dir>/index.html` and `<out_dir>/figures/`.

  Figure paths must be absolute or relative to the current directory; a missing figure is
  reported in its section rather than failing the report. `timings` maps a section's name
  to its seconds per `leeml.timing.PARTS` (a `Record.seconds`); with it, the report has a
  table "Where the time went".
  """
  os.makedirs(out_dir, exist_ok=True)
  meta = {"scale": scale, **(meta or {})}
  figures = {id(s): _copy_figures(s, out_dir) for s in sections}
  time_table = time_rows(sections, timings or {})
  md = _markdown(sections, meta, figures, time_table)
  page = _html(sections, meta, figures, time_table)
  md_path, html_path = os.path.join(out_dir, "REPORT.md"), os.path.join(out_dir, "index.html")
  _write_atomic(md_path, md)
  _write_atomic(html_path, page)
  copied = tuple(os.path.join(out_dir, rel) for fs in figures.values() for _, rel in fs if rel)
  return ReportFiles(html=html_path, markdown=md_path, figures=copied)


def _write_atomic(path: str, text: str) -> None:
  # A run interrupted while writing leaves the previous report, not half a file.
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)


def _slug(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "section"


def _copy_figures(section: Section, out_dir: str) -> list[tuple[Figure, str | None]]:
  """Copies the section's figures to figures/<section>/; returns (figure, relative path or
  None when the file is missing)."""
  rel_dir = f"figures/{_slug(section.name)}"
  final = os.path.join(out_dir, rel_dir)
  # Stage then swap: stale figures of an earlier run go, and a figure whose source already
  # lies in the destination (rewriting an existing report) is read before it is replaced.
  os.makedirs(os.path.join(out_dir, "figures"), exist_ok=True)
  stage = tempfile.mkdtemp(dir=os.path.join(out_dir, "figures"), prefix=".stage-")
  out, used = [], set()
  for fig in section.figures:
    if not os.path.isfile(fig.path):
      out.append((fig, None))
      continue
    base, ext = os.path.splitext(os.path.basename(fig.path))
    name, k = _slug(base) + ext, 2
    while name in used:  # two figures with one file name (from different directories)
      name, k = f"{_slug(base)}-{k}{ext}", k + 1
    used.add(name)
    shutil.copyfile(fig.path, os.path.join(stage, name))
    out.append((fig, f"{rel_dir}/{name}"))
  shutil.rmtree(final, ignore_errors=True)
  os.replace(stage, final)
  return out


def _status(section: Section) -> str:
  c = count([section])
  if not c.claims:
    return "no claims"
  return f"{c.passed} PASS, {c.failed} FAIL"


def format_seconds(s: float) -> str:
  if s < 60:
    return f"{s:.1f} s"
  m, sec = divmod(int(round(s)), 60)
  return f"{m} min {sec} s" if m < 60 else f"{m // 60} h {m % 60} min"


TIME_HEADER = ("experiment",) + tuple(f"{p} (s)" for p in timing.PARTS) + (
    "total (s)", "% of the job")
TIME_TITLE = "Where the time went"


def time_rows(sections: Sequence[Section],
              timings: Mapping[str, Mapping[str, float]]) -> list[tuple[str, ...]]:
  """The rows of "Where the time went": one per timed section (in report order), then
  the job's total; each part in seconds, the total's share of the job. [] when none was
  timed."""
  timed = [(s.name, timings[s.name]) for s in sections if s.name in timings]
  if not timed:
    return []
  job = sum(sum(t.get(p, 0.0) for p in timing.PARTS) for _, t in timed)

  def row(name: str, t: Mapping[str, float]) -> tuple[str, ...]:
    parts = [t.get(p, 0.0) for p in timing.PARTS]
    share = 100.0 * sum(parts) / job if job > 0 else 0.0
    return (name, *(f"{x:.1f}" for x in parts), f"{sum(parts):.1f}", f"{share:.1f}")

  totals = {p: sum(t.get(p, 0.0) for _, t in timed) for p in timing.PARTS}
  return [row(n, t) for n, t in timed] + [row("total", totals)]


def _numbers(v: Verdict) -> str:
  return v.numbers_text() or "—"


def _summary_numbers(v: Verdict) -> str:
  # A check that raised (or a crashed experiment) has no numbers; its error says why.
  if v.numbers or not v.detail:
    return _numbers(v)
  return f"— ({v.detail})"


_TIME_NOTE = ("Wall time of each experiment: XLA compilation (tracing, lowering, compiling "
              "or reading the persistent cache), training and evaluation as the trainers "
              "mark them (less compilation), and the rest (data, curvature, plots, "
              "checkpoints); a finished run reused on a rerun costs no training.")

# ---------------------------------------------------------------------------------------
# Markdown

def _md_text(text: str) -> str:
  """Text that renders as itself: no stray HTML tags (the statement '<b>' stays text)."""
  return re.sub(r"<(?=[A-Za-z/!?])", r"\\<", str(text))


def _md_cell(text: str) -> str:
  return _md_text(text).replace("|", r"\|").replace("\r", "").replace("\n", "<br>")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
           "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
  return lines


def _md_verdict(v: Verdict) -> str:
  return f"**{v.verdict}**" if v.verdict == FAIL else v.verdict


def _md_fence(text: str) -> list[str]:
  fence = "```"
  while fence in text:  # a note that itself contains ``` must not close the block
    fence += "`"
  return [fence, text.rstrip("\n"), fence]


def _markdown(sections, meta, figures, time_table) -> str:
  c = count(sections)
  out = [f"# {TITLE}", ""]
  out += _md_table(("run", ""), ((k, str(v)) for k, v in meta.items()))
  out += ["", "## Summary", "",
          f"{c.claims} claims in {len(sections)} sections: **{c.passed} PASS**, "
          f"**{c.failed} FAIL**.", ""]
  rows = [(s.name, v.claim.id, v.claim.statement, v.claim.source, v.claim.threshold,
           _md_verdict(v), _summary_numbers(v)) for s in sections for v in s.verdicts]
  out += _md_table(("section", "claim", "statement", "source", "threshold", "verdict",
                    "numbers (mean ± std (n))"), rows)
  empty = [s.name for s in sections if not s.verdicts]
  if empty:
    out += ["", "Sections without claims: " + ", ".join(_md_text(n) for n in empty) + "."]
  if time_table:
    out += ["", f"## {TIME_TITLE}", "", _TIME_NOTE, ""] + _md_table(TIME_HEADER, time_table)
  for s in sections:
    out += ["", f"## {_md_text(s.title)}", "",
            f"`{s.name}` · {_status(s)} · {format_seconds(s.seconds)}", "", "Rerun:", ""]
    out += _md_fence(s.command)
    if s.verdicts:
      out += [""] + _md_table(
          ("claim", "verdict", "statement", "threshold", "numbers", "detail"),
          ((v.claim.id, _md_verdict(v), v.claim.statement, v.claim.threshold, _numbers(v),
            v.detail) for v in s.verdicts))
    else:
      out += ["", "No claims were judged in this section."]
    for fig, rel in figures[id(s)]:
      if rel is None:
        out += ["", f"*Figure missing: {_md_text(fig.path)} ({_md_text(fig.caption)})*"]
      else:
        alt = re.sub(r"[\[\]\n]", " ", fig.caption)
        out += ["", f"![{alt}]({urllib.parse.quote(rel)})", "", f"*{_md_text(fig.caption)}*"]
    for t in s.tables:
      out += ["", f"**{_md_text(t.title)}**", ""] + _md_table(t.header, t.rows)
    if s.notes:
      out += ["", "Notes:", ""]
      for note in s.notes:
        # A multi-line note (a traceback) is a code block, with blank lines around it.
        out += ([""] + _md_fence(note) + [""] if "\n" in note.strip()
                else [f"- {_md_text(note)}"])
  return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
  max-width:1180px;margin:2em auto;padding:0 1.2em;background:#fff}
h1{font-size:1.7em;margin:.2em 0 .6em}
h2{font-size:1.35em;margin:2.2em 0 .3em;padding-top:.6em;border-top:1px solid #d5d9de}
table{border-collapse:collapse;margin:.7em 0;font-size:.92em}
table.claims{width:100%}
th,td{border:1px solid #d5d9de;padding:.35em .55em;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600}
table.meta th{white-space:nowrap}
td.num{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
table.time td.num{text-align:right}
table.time tr:last-child td{font-weight:600}
tr.fail td{background:#fff6f6}
.badge{display:inline-block;padding:.08em .55em;border-radius:.8em;font-weight:700;
  font-size:.82em;letter-spacing:.03em;color:#fff;white-space:nowrap}
.pass{background:#1a7f37}.fail{background:#cf222e}.none{background:#6e7781}
.sub{color:#57606a;margin:.2em 0 .8em}
.totals{font-size:1.1em;margin:.6em 0}
pre{background:#f6f8fa;border:1px solid #d5d9de;border-radius:6px;padding:.6em .8em;
  overflow-x:auto;font-size:.88em}
figure{margin:1em 0;text-align:center}
figure img{max-width:100%;border:1px solid #e1e4e8}
figcaption{color:#57606a;font-size:.92em;margin-top:.3em}
.missing{color:#cf222e;font-style:italic}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
"""


def _e(text) -> str:
  return html.escape(str(text), quote=True)


def _badge(verdict: str) -> str:
  cls = {PASS: "pass", FAIL: "fail"}.get(verdict, "none")
  return f'<span class="badge {cls}">{_e(verdict)}</span>'


def _anchor(section: Section) -> str:
  return "sec-" + _slug(section.name)


def _html_table(header, rows, caption: str | None = None) -> list[str]:
  out = ["<table>"]
  if caption:
    out.append(f"<caption>{_e(caption)}</caption>")
  out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
  out += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows]
  return out + ["</table>"]


def _html(sections, meta, figures, time_table) -> str:
  c = count(sections)
  out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{_e(TITLE)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
         f"<h1>{_e(TITLE)}</h1>", '<table class="meta">']
  out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in meta.items()]
  out += ["</table>", "<h2>Summary</h2>",
          f'<p class="totals">{c.claims} claims in {len(sections)} sections: '
          f"{_badge(PASS)} {c.passed} &nbsp; {_badge(FAIL)} {c.failed}</p>",
          '<table class="claims">',
          "<tr><th>section</th><th>claim</th><th>statement</th><th>source</th>"
          "<th>threshold</th><th>verdict</th><th>numbers (mean ± std (n))</th></tr>"]
  for s in sections:
    link = f'<a href="#{_anchor(s)}">{_e(s.name)}</a>'
    if not s.verdicts:
      out.append(f'<tr><td>{link}</td><td colspan="6"><i>no claims judged</i></td></tr>')
    for v in s.verdicts:
      cls = ' class="fail"' if v.verdict == FAIL else ""
      out.append(f"<tr{cls}><td>{link}</td><td>{_e(v.claim.id)}</td>"
                 f"<td>{_e(v.claim.statement)}</td><td>{_e(v.claim.source)}</td>"
                 f"<td>{_e(v.claim.threshold)}</td><td>{_badge(v.verdict)}</td>"
                 f'<td class="num">{_e(_summary_numbers(v))}</td></tr>')
  out.append("</table>")
  if time_table:
    out += [f'<h2 id="time">{_e(TIME_TITLE)}</h2>', f"<p>{_e(_TIME_NOTE)}</p>",
            '<table class="time">',
            "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in TIME_HEADER) + "</tr>"]
    for row in time_table:
      out.append("<tr>" + f"<td>{_e(row[0])}</td>"
                 + "".join(f'<td class="num">{_e(c)}</td>' for c in row[1:]) + "</tr>")
    out.append("</table>")
  for s in sections:
    out += [f'<h2 id="{_anchor(s)}">{_e(s.title)}</h2>',
            f'<p class="sub"><code>{_e(s.name)}</code> · {_e(_status(s))} · '
            f"{_e(format_seconds(s.seconds))}</p>",
            f"<p>Rerun:</p><pre><code>{_e(s.command)}</code></pre>"]
    if s.verdicts:
      out += ['<table class="claims">', "<tr><th>claim</th><th>verdict</th><th>statement</th>"
              "<th>threshold</th><th>numbers</th><th>detail</th></tr>"]
      for v in s.verdicts:
        cls = ' class="fail"' if v.verdict == FAIL else ""
        out.append(f"<tr{cls}><td>{_e(v.claim.id)}</td><td>{_badge(v.verdict)}</td>"
                   f"<td>{_e(v.claim.statement)}</td><td>{_e(v.claim.threshold)}</td>"
                   f'<td class="num">{_e(_numbers(v))}</td><td>{_e(v.detail)}</td></tr>')
      out.append("</table>")
    else:
      out.append("<p><i>No claims were judged in this section.</i></p>")
    for fig, rel in figures[id(s)]:
      if rel is None:
        out.append(f'<p class="missing">Figure missing: {_e(fig.path)} ({_e(fig.caption)})</p>')
      else:
        src = _e(urllib.parse.quote(rel))
        out.append(f'<figure><img src="{src}" alt="{_e(fig.caption)}">'
                   f"<figcaption>{_e(fig.caption)}</figcaption></figure>")
    for t in s.tables:
      out += _html_table(t.header, t.rows, caption=t.title)
    if s.notes:
      out.append("<p>Notes:</p><ul>")
      for note in s.notes:
        body = f"<pre>{_e(note.rstrip())}</pre>" if "\n" in note.strip() else _e(note)
        out.append(f"<li>{body}</li>")
      out.append("</ul>")
  out += ["</body>", "</html>"]
  return "\n".join(out) + "\n"
