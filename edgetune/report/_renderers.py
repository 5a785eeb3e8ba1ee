"""Report formats: renderers named by a key (``html``, ``markdown``, ``csv``, ``png``), each
writing its file(s) from a :class:`~edgetune.report._collect.ReportData`.

Each format is registered (:func:`register_renderer`: name, the files it writes, the options it
takes, its writer), so a new one is one writer function plus its registration; ``build_report``
writes every default renderer (or the ``formats`` asked for) and :func:`get_renderer` lists the
registered names when a name is unknown. A writer only reads the data: the Pareto front and
hypervolume are computed once, by ``collect``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from edgetune._registry import Registry
from edgetune.errors import ArtifactError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from edgetune.report._collect import ReportData

Writer = Callable[["ReportData", Path, Mapping[str, Any]], None]  # (data, folder, options) -> None
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Renderer:
    """One registered format: its name, the file names it writes into the report folder, the
    options it takes (e.g. ``interactive``) and its writer ``(data, folder, options) -> None``.
    ``default``: written by ``build_report`` when no ``formats`` are given."""

    name: str
    files: tuple[str, ...]
    write: Writer
    options: tuple[str, ...] = ()
    default: bool = True

    def render(self, data: "ReportData", folder: Path, options: Mapping[str, Any] | None = None) -> list[Path]:
        """Write this format's files into ``folder``; the paths written, in :attr:`files` order.

        ``options`` may hold keys for other renderers; this one receives only its own."""
        self.write(data, Path(folder), {k: v for k, v in (options or {}).items() if k in self.options})
        paths = [Path(folder) / f for f in self.files]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise ArtifactError(f"renderer {self.name!r} declares file(s) {list(self.files)} but did not write "
                              f"{missing}; fix its writer or its files=")
        return paths


_RENDERERS: Registry[Renderer] = Registry(
    lambda name, names: ConfigError(f"unknown report format {name!r}; registered formats are {', '.join(names)}"))


def register_renderer(name: str, files: Iterable[str], write: Writer, *, options: Iterable[str] = (),
                      default: bool = True) -> Renderer:
    """Make ``name`` a report format writing ``files`` with ``write`` (re-registering replaces it)."""
    files = tuple(files)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a renderer name is a Python identifier like 'markdown', but got {name!r}")
    if not files or not all(isinstance(f, str) and _FILE.fullmatch(f) for f in files):
        raise ValueError(f"renderer {name!r}: files must be plain file names like 'front.json', but got {files!r}")
    taken = {f: r.name for r in _RENDERERS.values() if r.name != name for f in r.files}
    clash = sorted(f for f in files if f in taken)
    if clash:
        raise ValueError(f"renderer {name!r}: file(s) {clash} are already written by {taken[clash[0]]!r}")
    return _RENDERERS.register(name, Renderer(name, files, write, tuple(options), bool(default)))


def get_renderer(name: str) -> Renderer:
    """The registered renderer ``name``; ConfigError listing the registered ones when unknown."""
    return _RENDERERS.get(name)


def renderers() -> list[str]:
    """The registered format names, in registration order."""
    return _RENDERERS.names()


def default_formats() -> list[str]:
    """The formats ``build_report`` writes when none are named."""
    return [r.name for r in _RENDERERS.values() if r.default]


def report_files(formats: Iterable[str] | None = None) -> list[str]:
    """The file names a report of ``formats`` (default: :func:`default_formats`) consists of."""
    names = default_formats() if formats is None else list(formats)
    return [f for name in names for f in get_renderer(name).files]


# ----------------------------------------------------------------------------- the built-in formats


def _html(data: "ReportData", folder: Path, options: Mapping[str, Any]) -> None:
    from edgetune.report._render import render_html

    text = render_html(data, interactive=bool(options.get("interactive", True)))
    (folder / "index.html").write_text(text, encoding="utf-8")


def _markdown(data: "ReportData", folder: Path, options: Mapping[str, Any]) -> None:
    from edgetune.report._render import render_markdown

    (folder / "pareto.md").write_text(render_markdown(data), encoding="utf-8")


def _csv(data: "ReportData", folder: Path, options: Mapping[str, Any]) -> None:
    from edgetune.report._render import render_csv

    (folder / "trials.csv").write_text(render_csv(data), encoding="utf-8")


def _png(data: "ReportData", folder: Path, options: Mapping[str, Any]) -> None:
    from edgetune.report._render import render_png

    render_png(data, folder / "pareto.png")


register_renderer("html", ("index.html",), _html, options=("interactive",))
register_renderer("markdown", ("pareto.md",), _markdown)
register_renderer("csv", ("trials.csv",), _csv)
register_renderer("png", ("pareto.png",), _png)

__all__ = ["Renderer", "Writer", "default_formats", "get_renderer", "register_renderer", "renderers",
           "report_files"]
