"""The contract every report renderer keeps, as a pytest suite to subclass per renderer.

A test module subclasses :class:`RendererContract` and sets ``name`` (a format registered with
:func:`edgetune.report.register_renderer`) and, where it takes some, ``options``. The suite
builds one small real study (the simulated runner; failed, over-budget and front trials; a
study name and a failure reason full of markup, quotes, separators and a newline) and checks
that the renderer:

* writes exactly the files it declares, non-empty, also through ``build_report(formats=[name])``;
* writes the same bytes for the same data (``volatile`` names text allowed to differ, e.g. a
  timestamp);
* treats names as data: read back with the format's own reader (HTML, Markdown tables, CSV,
  JSON; PNG is checked for its signature only) the names come back whole, and nothing in them
  became markup or broke the file's structure.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Mapping

import pytest

from edgetune.errors import ParityError

#: a study name no renderer may paste raw into markup, a table cell or a plot title
HOSTILE_NAME = 'Zq-study </script><edgetune-x>b</edgetune-x> & "q" | a,b $\\x$ `t` #1'
#: a failure message: markup, an entity, a pipe and a comma (table separators), quotes and a newline
HOSTILE_REASON = 'Zq-reason 9 | tol 1, "q" <edgetune-x>oops</edgetune-x> &amp;\nsecond line'
_TAG = "edgetune-x"

_CONFIG = {
    "study_name": HOSTILE_NAME,
    "n_trials": 10,
    "seed": 3,
    "space": {"bits": [4, 8, 32], "sparsity": {"low": 0.0, "high": 0.6, "step": 0.2}, "chunk_ms": [160, 320]},
    "objectives": ["wer", "latency_ms", "size_bytes"],
    "budgets": ["latency_ms <= 400"],
    "train": {"epochs": 1},
    "sampler": {"name": "random"},
}


def _fails(knobs: Any) -> Exception | None:
    return ParityError(HOSTILE_REASON) if knobs.bits == 4 else None


def _squash(text: str) -> str:
    return " ".join(text.split())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def read_html(path: Path) -> str:
    """The page's visible text; fails if anything from the data became an element."""
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    assert _TAG not in parser.tags, f"{path.name}: data became markup (<{_TAG}> parsed as an element)"
    return "".join(parser.text)


def read_markdown(path: Path) -> str:
    """The text a Markdown reader sees; fails on raw HTML from the data or a table with ragged rows."""
    text = path.read_text(encoding="utf-8")
    assert f"<{_TAG}" not in text, f"{path.name}: data pasted as raw HTML (Markdown passes it through)"
    table: int | None = None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = len(re.split(r"(?<!\\)\|", line)) - 2
            table = cells if table is None else table
            assert cells == table, f"{path.name}: table row with {cells} cells, header has {table}: {line!r}"
        else:
            table = None
    return html.unescape(text.replace("\\|", "|"))


def read_csv(path: Path) -> str:
    """Every cell, joined by newlines; fails if a row is longer or shorter than the header."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert rows, f"{path.name} is empty"
    ragged = [i for i, r in enumerate(rows) if len(r) != len(rows[0])]
    assert not ragged, f"{path.name}: rows {ragged[:5]} do not have the header's {len(rows[0])} cells"
    return "\n".join(cell for row in rows for cell in row)


def read_json(path: Path) -> str:
    """Every string in the document, joined by newlines (the file must parse)."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, Mapping):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(json.loads(path.read_text(encoding="utf-8")))
    return "\n".join(out)


def read_png(path: Path) -> None:
    """Not text: the file must be a whole PNG (signature first, IEND chunk last)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND", f"{path.name} is not a whole PNG file"
    return None


READERS = {".html": read_html, ".md": read_markdown, ".csv": read_csv, ".json": read_json, ".png": read_png,
           ".txt": lambda p: p.read_text(encoding="utf-8")}


class RendererContract:
    """Files, determinism and names as data; subclass it and set ``name`` (and ``options``)."""

    name: str = ""
    options: Mapping[str, Any] = {}
    #: regular expressions of text that may differ between two renders of the same data
    volatile: tuple[str, ...] = ()

    def read_back(self, path: Path) -> str | None:
        """What a reader of ``path``'s format sees (None: not text). Override for other suffixes."""
        reader = READERS.get(path.suffix)
        if reader is None:  # pragma: no cover - a subclass for a new suffix overrides read_back
            raise NotImplementedError(f"no reader for {path.suffix!r} files; override read_back")
        return reader(path)

    @pytest.fixture(scope="class")
    @classmethod
    def study_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        from edgetune.search import SimulatedRunner, StudyConfig, run_study

        d = tmp_path_factory.mktemp("renderer_study")
        run_study(StudyConfig.from_dict(_CONFIG), d, runner=SimulatedRunner(fail_when=_fails), progress=False)
        return d

    @pytest.fixture(scope="class")
    @classmethod
    def report_data(cls, study_dir: Path) -> Any:
        from edgetune.report._collect import collect
        from edgetune.search import load_study_dir

        config, study = load_study_dir(study_dir)
        data = collect(study, config)
        assert data.failures and data.front and data.study_name == HOSTILE_NAME  # the fixture has it all
        return data

    @pytest.fixture
    def renderer(self) -> Any:
        from edgetune.report import get_renderer

        return get_renderer(self.name)

    def _render(self, renderer: Any, data: Any, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        return renderer.render(data, folder, dict(self.options))

    def test_writes_exactly_its_files(self, renderer: Any, report_data: Any, tmp_path: Path) -> None:
        paths = self._render(renderer, report_data, tmp_path / "out")
        assert [p.name for p in paths] == list(renderer.files)
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(renderer.files)
        assert all(p.stat().st_size > 0 for p in paths)

    def test_build_report_writes_it(self, renderer: Any, study_dir: Path, tmp_path: Path) -> None:
        from edgetune.report import build_report

        out = build_report(study_dir, out_dir=tmp_path / "report", formats=[self.name],
                           interactive=self.options.get("interactive", True))
        assert sorted(p.name for p in out.iterdir()) == sorted(renderer.files)

    def test_same_data_same_bytes(self, renderer: Any, report_data: Any, tmp_path: Path) -> None:
        first = self._render(renderer, report_data, tmp_path / "a")
        second = self._render(renderer, report_data, tmp_path / "b")
        for a, b in zip(first, second):
            da, db = a.read_bytes(), b.read_bytes()
            for pattern in self.volatile:
                da, db = (re.sub(pattern.encode(), b"<volatile>", x) for x in (da, db))
            assert da == db, f"{a.name} differs between two renders of the same data"

    def test_names_are_data(self, renderer: Any, report_data: Any, tmp_path: Path) -> None:
        for path in self._render(renderer, report_data, tmp_path / "out"):
            text = self.read_back(path)
            if text is None:
                continue
            raw = path.read_text(encoding="utf-8", errors="replace")
            for hostile in (HOSTILE_NAME, HOSTILE_REASON):
                marker = hostile.split()[0]  # shown at all (possibly escaped)?
                if marker in raw or marker in text:
                    assert _squash(hostile) in _squash(text), (
                        f"{path.name} shows {marker!r} but not the whole name {hostile!r} as text")


__all__ = ["HOSTILE_NAME", "HOSTILE_REASON", "READERS", "RendererContract"]
