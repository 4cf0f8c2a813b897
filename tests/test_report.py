"""leeml.report: REPORT.md and index.html from sections, with real verdicts and figures."""

import html.parser
import os
import re

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import pytest

from conftest import REPO
from leeml import report
from leeml.claims import FAIL, PASS, Claim, judge, less_than
from leeml.lectures import Figure, Section, Table


def make_png(path, color="tab:blue"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig, ax = plt.subplots(figsize=(4, 2.5), dpi=60)
  ax.plot([0, 1, 2, 3], [3, 1.5, 1, 0.8], color=color, label="train loss")
  ax.set_xlabel("step")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return str(path)


def _claim(cid, statement, check, threshold="mean a < mean b"):
  return Claim(id=cid, statement=statement, source="Lecture 8, slide 'CE v.s. MSE'",
               threshold=threshold, check=check)


def _divide(_):
  return 1 / 0


def fake_sections(tmp_path):
  """lec_fake: a PASS, a FAIL (with '<b>' in its statement), a raising check; a figure, a
  table and notes. lec_empty: no claims, a missing figure."""
  pass_v = judge(_claim("lec_fake.ce_lower", "Cross-entropy makes training easier",
                        lambda r: less_than("ce", r["ce"], "mse", r["mse"])),
                 {"ce": [0.1, 0.2, 0.15], "mse": [0.5, 0.6, 0.55]})
  fail_v = judge(_claim("lec_fake.bold", "<b>bold</b> & a claim | with a pipe",
                        lambda r: less_than("a", r["a"], "b", r["b"])),
                 {"a": [2.0, 2.5], "b": [1.0, 1.5]})
  raise_v = judge(_claim("lec_fake.raises", "A check that divides by zero", _divide), {})
  assert [pass_v.verdict, fail_v.verdict, raise_v.verdict] == [PASS, FAIL, FAIL]
  png = make_png(tmp_path / "runs" / "lec_fake" / "curve.png")
  table = Table(title="Final losses", header=("loss", "train", "test"),
                rows=(("ce", "0.15", "0.2"), ("mse|l2", "0.55", "0.6")))
  lec = Section(name="lec_fake", title="Lecture 8: classification <fake>",
                command="python experiments/reproduce.py --only=lec_fake --scale=smoke",
                verdicts=[pass_v, fail_v, raise_v], figures=[Figure(png, "Training loss, CE")],
                tables=[table], notes=["3 seeds each", "line one\nline two <u>"], seconds=12.34)
  empty = Section(name="lec_empty", title="An empty lecture", command="run --empty",
                  figures=[Figure(str(tmp_path / "nowhere.png"), "never drawn")], seconds=125)
  return [lec, empty]


TIMINGS = {"lec_fake": {"compile": 2.0, "train": 6.5, "eval": 1.0, "other": 0.5},
           "lec_empty": {"compile": 0.0, "train": 0.0, "eval": 0.0, "other": 30.0},
           "not_in_the_report": {"other": 99.0}}


@pytest.fixture
def written(tmp_path):
  sections = fake_sections(tmp_path)
  out = str(tmp_path / "report")
  files = report.write_report(sections, out, scale="smoke",
                              meta={"date": "2025-01-02T03:04:05", "jax": "0.10.2"},
                              timings=TIMINGS)
  md = open(files.markdown, encoding="utf-8").read()
  page = open(files.html, encoding="utf-8").read()
  return sections, out, files, md, page


def test_files_exist_and_summary_counts(written):
  sections, out, files, md, page = written
  assert files.markdown == os.path.join(out, "REPORT.md") and os.path.isfile(files.markdown)
  assert files.html == os.path.join(out, "index.html") and os.path.isfile(files.html)
  assert report.count(sections) == report.Counts(claims=3, passed=1, failed=2)
  assert "3 claims in 2 sections: **1 PASS**, **2 FAIL**." in md
  assert re.search(r"3 claims in 2 sections: .*PASS</span> 1 .*FAIL</span> 2", page)
  # Metadata: the scale argument first, then the caller's keys in order.
  assert md.index("| scale | smoke |") < md.index("| date | 2025-01-02T03:04:05 |")
  assert "<tr><th>jax</th><td>0.10.2</td></tr>" in page
  # Every claim has a summary row, in order, with its source and threshold.
  ids = re.findall(r"^\| lec_fake \| (lec_fake\.\w+) \|", md, re.M)
  assert ids == ["lec_fake.ce_lower", "lec_fake.bold", "lec_fake.raises"]
  assert page.count('class="badge pass"') == 1 + 1 + 1  # totals, summary row, section row
  assert page.count('class="badge fail"') == 1 + 2 + 2
  assert "Sections without claims: lec_empty." in md
  # A claim without numbers shows its error in the summary instead.
  assert ("| **FAIL** | — (check raised ZeroDivisionError: division by zero) |" in md)


def test_fail_numbers_and_details_appear_in_both(written):
  _, _, _, md, page = written
  for text in ("a = 2.25 ± 0.354 (n=2); b = 1.25 ± 0.354 (n=2)",
               "ce = 0.15 ± 0.05 (n=3); mse = 0.55 ± 0.05 (n=3)",
               "check raised ZeroDivisionError: division by zero"):
    assert text in md, text
    assert text in page, text
  assert "a 2.25 not < b 1.25" in md and "a 2.25 not &lt; b 1.25" in page  # the FAIL's detail
  assert "| **FAIL** |" in md and "| PASS |" in md
  assert page.count('<tr class="fail">') == 4  # two FAIL claims, in summary and section


def test_text_is_escaped(written):
  _, _, _, md, page = written
  assert "<b>" not in page and "<fake>" not in page and "<u>" not in page
  assert "&lt;b&gt;bold&lt;/b&gt; &amp; a claim | with a pipe" in page
  assert "Lecture 8: classification &lt;fake&gt;" in page
  assert "<pre>line one\nline two &lt;u&gt;</pre>" in page
  # Markdown: a tag-like '<' is backslash-escaped and a '|' does not split the cell.
  assert r"\<b>bold\</b> & a claim \| with a pipe" in md
  assert "## Lecture 8: classification \\<fake>" in md


def test_markdown_tables_keep_their_columns(written):
  _, _, _, md, _ = written
  rows = [line for line in md.splitlines() if line.startswith("|")]
  widths = {len(re.split(r"(?<!\\)\|", line)) - 2 for line in rows}
  by_table = []
  for line in md.splitlines() + [""]:
    if line.startswith("|"):
      by_table.append(len(re.split(r"(?<!\\)\|", line)) - 2)
    elif by_table:
      assert len(set(by_table)) == 1, by_table
      by_table = []
  assert {2, 7, 6, 3} <= widths  # meta, summary, verdicts, the fake table
  assert r"| mse\|l2 | 0.55 | 0.6 |" in md


def test_figure_is_copied_and_linked_relatively(written, tmp_path):
  _, out, files, md, page = written
  rel = "figures/lec_fake/curve.png"
  assert files.figures == (os.path.join(out, rel),)
  src = tmp_path / "runs" / "lec_fake" / "curve.png"
  assert open(os.path.join(out, rel), "rb").read() == src.read_bytes()
  assert f"![Training loss, CE]({rel})" in md
  assert f'<img src="{rel}" alt="Training loss, CE">' in page
  links = re.findall(r'<img src="([^"]+)"', page) + re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
  assert len(links) == 2
  for link in links:
    assert not os.path.isabs(link) and os.path.isfile(os.path.join(out, link)), link
  # The missing figure is reported, not fatal.
  assert "Figure missing:" in md and "nowhere.png" in md
  assert '<p class="missing">Figure missing:' in page


def test_html_is_standalone_and_well_formed(written):
  _, _, _, _, page = written
  void = {"meta", "img", "br", "hr", "link", "input"}

  class Checker(html.parser.HTMLParser):
    def __init__(self):
      super().__init__()
      self.stack, self.urls = [], []

    def handle_starttag(self, tag, attrs):
      self.urls += [v for k, v in attrs if k in ("src", "href")]
      if tag not in void:
        self.stack.append(tag)

    def handle_endtag(self, tag):
      assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
      self.stack.pop()

  checker = Checker()
  checker.feed(page)
  assert checker.stack == []
  assert checker.urls and all(not re.match(r"[a-z]+:|//|/", u) for u in checker.urls)
  assert "<script" not in page and "<link" not in page
  assert page.count('<h2 id="sec-lec_fake">') == 1 and 'href="#sec-lec_fake"' in page


def test_rewrite_drops_stale_figures_and_dedupes_names(tmp_path):
  out = str(tmp_path / "report")
  a = make_png(tmp_path / "a" / "plot.png", "red")
  b = make_png(tmp_path / "b" / "plot.png", "green")
  sec = Section("s", "S", "cmd", figures=[Figure(a, "red"), Figure(b, "green")])
  files = report.write_report([sec], out, scale="cpu")
  names = sorted(os.listdir(os.path.join(out, "figures", "s")))
  assert names == ["plot-2.png", "plot.png"]
  assert open(os.path.join(out, "figures/s/plot-2.png"), "rb").read() == open(b, "rb").read()
  # Rewriting from the copied figure itself (source inside the destination) still works,
  # and the figure the new run no longer has is gone.
  sec.figures = [Figure(files.figures[1], "green again")]
  report.write_report([sec], out, scale="cpu")
  assert os.listdir(os.path.join(out, "figures", "s")) == ["plot-2.png"]
  assert open(os.path.join(out, "figures/s/plot-2.png"), "rb").read() == open(b, "rb").read()
  assert not [n for n in os.listdir(os.path.join(out, "figures")) if n.startswith(".")]


def test_git_commit_and_seconds(tmp_path):
  commit = report.git_commit(REPO)
  assert commit is not None and re.fullmatch(r"[0-9a-f]{12}(\+dirty)?", commit)
  assert report.git_commit(str(tmp_path)) is None
  assert report.format_seconds(5.04) == "5.0 s"
  assert report.format_seconds(125) == "2 min 5 s"
  assert report.format_seconds(3725) == "1 h 2 min"


def test_where_the_time_went(written, tmp_path):
  sections, _, _, md, page = written
  assert "## Where the time went" in md and '<h2 id="time">Where the time went</h2>' in page
  assert ("| experiment | compile (s) | train (s) | eval (s) | other (s) | total (s) "
          "| % of the job |") in md
  # Report order; a timing of a section not in the report is ignored; shares of 40 s.
  assert "| lec_fake | 2.0 | 6.5 | 1.0 | 0.5 | 10.0 | 25.0 |" in md
  assert "| lec_empty | 0.0 | 0.0 | 0.0 | 30.0 | 30.0 | 75.0 |" in md
  assert "| total | 2.0 | 6.5 | 1.0 | 30.5 | 40.0 | 100.0 |" in md
  assert md.index("| lec_fake | 2.0") < md.index("| lec_empty | 0.0") < md.index("| total | 2.0")
  assert "not_in_the_report" not in md and "not_in_the_report" not in page
  assert ('<tr><td>lec_fake</td><td class="num">2.0</td><td class="num">6.5</td>'
          '<td class="num">1.0</td><td class="num">0.5</td><td class="num">10.0</td>'
          '<td class="num">25.0</td></tr>') in page
  # Without timings (or with none of the report's sections) there is no such table.
  files = report.write_report(sections, str(tmp_path / "plain"), scale="smoke",
                              timings={"other_section": {"train": 1.0}})
  plain = open(files.markdown, encoding="utf-8").read()
  assert "Where the time went" not in plain
  assert report.time_rows(sections, {}) == []
