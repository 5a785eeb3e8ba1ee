"""The study report: built from a study with failed and over-budget trials; an offline HTML page
with plotly.js embedded exactly once; a CSV whose Pareto column matches a brute-force front."""

from __future__ import annotations

import csv
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import ParityError, StudyError
from edgetune.report import build_report, hypervolume
from edgetune.search import SimulatedRunner, run_study

from _helpers import WIDE_SPACE, study_config


def config(n: int = 16, **overrides):
    """This file's study (what differs from _helpers.STUDY): every knob searched, a latency budget."""
    return study_config("rep", n, **{"seed": 2, "space": WIDE_SPACE, "budgets": ["latency_ms <= 300"],
                                     "train": {"epochs": 2}, **overrides})


def fails(k):
    if k.bits == 4 and k.sparsity >= 0.4:
        return ParityError("only 61 of 80 transcripts identical")
    return None


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("study")
    run_study(config(), d, runner=SimulatedRunner(fail_when=fails), progress=False, report=build_report)
    return d


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(s: str) -> float:
    return float(s) if s not in ("", None) else math.nan


def test_report_files_exist(study_dir: Path) -> None:
    rep = study_dir / "report"
    assert {p.name for p in rep.iterdir()} == {"index.html", "pareto.md", "trials.csv", "pareto.png"}
    assert (rep / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in study_dir.iterdir() if p.name.startswith(".report")]  # no temp folder left


def test_study_has_failed_and_infeasible_trials(study_dir: Path) -> None:
    rows = read_csv(study_dir / "report" / "trials.csv")
    assert len(rows) == 16 and [int(r["number"]) for r in rows] == list(range(16))
    states = {r["state"] for r in rows}
    assert "FAIL" in states and "COMPLETE" in states
    assert any(r["feasible"] == "False" for r in rows), "fixture should include over-budget trials"
    for col in ("number", "state", "wer", "latency_ms", "size_bytes", "bits", "sparsity", "depth_multiplier",
                "chunk_ms", "pareto", "artifact", "fail_reason"):
        assert col in rows[0], col
    for r in rows:
        if r["state"] == "FAIL":
            assert r["fail_reason"].startswith("ParityError: only 61 of 80")
            assert r["pareto"] == "False"


def test_csv_pareto_column_is_the_brute_force_feasible_front(study_dir: Path) -> None:
    rows = read_csv(study_dir / "report" / "trials.csv")
    cand = [r for r in rows if r["state"] == "COMPLETE" and r["feasible"] == "True" and not r["duplicate_of"]]
    pts = {int(r["number"]): np.array([num(r["wer"]), num(r["latency_ms"]), num(r["size_bytes"])]) for r in cand}
    expected = {
        n for n, p in pts.items()
        if not any(np.all(q <= p) and np.any(q < p) for m, q in pts.items() if m != n)
    }
    got = {int(r["number"]) for r in rows if r["pareto"] == "True"}
    assert got == expected and got
    for r in rows:  # latency column is what the budget constrains: p90 compute + algorithmic
        if r["state"] == "COMPLETE":
            assert num(r["latency_ms"]) == pytest.approx(num(r["compute_p90_ms"]) + num(r["algorithmic_latency_ms"]))
            assert (r["feasible"] == "True") == (num(r["latency_ms"]) <= 300)


def test_markdown_declares_reference_point_and_hypervolume(study_dir: Path) -> None:
    md = (study_dir / "report" / "pareto.md").read_text()
    rows = read_csv(study_dir / "report" / "trials.csv")
    feas = [r for r in rows if r["state"] == "COMPLETE" and r["feasible"] == "True" and not r["duplicate_of"]]
    pts = np.array([[num(r["wer"]), num(r["latency_ms"]), num(r["size_bytes"])] for r in feas])
    ref = pts.max(axis=0) + 0.1 * (pts.max(axis=0) - pts.min(axis=0))
    assert "derived: worst feasible value" in md
    hv_line = next(line for line in md.splitlines() if "**hypervolume**" in line)
    assert float(hv_line.split(":")[-1]) == pytest.approx(hypervolume(pts, ref), rel=1e-5)
    assert "ParityError" in md and "## Trials on the front" in md


class _Resources(HTMLParser):
    """Every URL-valued attribute and every <script>'s text length."""

    URL_ATTRS = {"src", "href", "data", "action", "poster", "srcset", "background", "formaction", "xlink:href"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: list[int] = []
        self._in_script = False
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k in self.URL_ATTRS and v:
                self.urls.append((tag, k, v))
        if tag == "script":
            self._in_script = True
            self.scripts.append(0)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += len(data)


def test_html_loads_nothing_from_the_network(study_dir: Path) -> None:
    html = (study_dir / "report" / "index.html").read_text()
    p = _Resources()
    p.feed(html)
    external = [u for u in p.urls if u[2].strip().lower().startswith(("http:", "https:", "//", "ftp:"))]
    assert external == []
    assert not [u for u in p.urls if u[0] in ("script", "link", "img", "iframe")]  # everything inline
    assert "iframe" not in p.tags
    assert "@import" not in html


def test_plotly_js_is_embedded_exactly_once(study_dir: Path) -> None:
    html = (study_dir / "report" / "index.html").read_text()
    p = _Resources()
    p.feed(html)
    big = [n for n in p.scripts if n > 1_000_000]
    assert len(big) == 1
    assert html.count("* plotly.js v") == 1
    assert html.count("Plotly.newPlot") >= 3  # front, hypervolume, importance figures use it


def test_html_lists_front_and_failures(study_dir: Path) -> None:
    html = (study_dir / "report" / "index.html").read_text()
    rows = read_csv(study_dir / "report" / "trials.csv")
    failed = [r["number"] for r in rows if r["state"] == "FAIL"]
    assert "only 61 of 80 transcripts identical" in html
    assert ", ".join(failed) in html
    assert "Parameter importance" in html and "Importance not computed" not in html


def test_report_of_a_study_without_complete_trials(tmp_path: Path) -> None:
    run_study(config(3), tmp_path, runner=SimulatedRunner(fail_when=lambda k: ParityError("no")), progress=False)
    out = build_report(tmp_path)
    md = (out / "pareto.md").read_text()
    assert "No feasible complete trial" in md
    html = (out / "index.html").read_text()
    assert "Importance not computed" in html and html.count("* plotly.js v") == 1
    assert len(read_csv(out / "trials.csv")) == 3


def test_report_is_replaced_atomically_and_refuses_non_study(tmp_path: Path, study_dir: Path) -> None:
    out = tmp_path / "r"
    build_report(study_dir, out_dir=out)
    (out / "stale.txt").write_text("old")
    build_report(study_dir, out_dir=out)
    assert not (out / "stale.txt").exists()  # the folder was swapped, not patched
    with pytest.raises(StudyError, match="not a study directory"):
        build_report(tmp_path / "nothing")


def test_report_states_the_studys_total_gpu_time(tmp_path: Path, study_dir: Path) -> None:
    assert "**GPU time**: none (no trial trained on a GPU)" in (study_dir / "report" / "pareto.md").read_text()

    class GpuRunner(SimulatedRunner):
        def __call__(self, *a, **kw):
            return {**super().__call__(*a, **kw), "gpu_seconds": 12.5, "gpu_energy_j": 3600.0}

    run_study(config(6, budgets=[]), tmp_path, runner=GpuRunner(), progress=False, report=build_report)
    rows = read_csv(tmp_path / "report" / "trials.csv")
    trained = [r for r in rows if r["state"] == "COMPLETE" and not r["duplicate_of"]]
    assert trained and all(num(r["gpu_seconds"]) == 12.5 for r in trained)
    total = 12.5 * len(trained)
    md = (tmp_path / "report" / "pareto.md").read_text()
    assert f"({total:.0f} GPU-s) over {len(trained)} trials trained on CUDA" in md
    assert f"NVML energy during training {3600.0 * len(trained) / 3.6e6:.3g} kWh" in md


def test_static_report_is_small_has_no_script_and_shows_the_front(tmp_path: Path, study_dir: Path) -> None:
    from edgetune.report import build_report

    out = build_report(study_dir, out_dir=tmp_path / "static", interactive=False)
    page = (out / "index.html").read_text()
    assert len(page.encode()) < 200_000 < (study_dir / "report" / "index.html").stat().st_size
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert '<img src="pareto.png"' in page and (out / "pareto.png").is_file()
    front = [r["number"] for r in read_csv(out / "trials.csv") if r["pareto"] == "True"]
    assert front and all(f"<td class=\"\">{n}</td>" in page for n in front)
