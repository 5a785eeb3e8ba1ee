"""Command line: ``edgetune <command>``. Each command lives in its own module here and only
parses arguments and calls the library (like lhotse's ``bin/modes``)."""

from __future__ import annotations

import argparse
import importlib
import sys

from edgetune.errors import EdgetuneError

# command name -> module under edgetune.cli that defines register(subparsers)
COMMANDS = {
    "candidate": "candidate",
    "transcribe": "transcribe",
    "bench": "bench",
    "check": "check",
    "search": "search",
    "report": "report",
    "export": "export",
    "corpus": "corpus",
    "base": "base",
    "data": "data",
    "ship": "ship",
}


def build_parser() -> argparse.ArgumentParser:
    from edgetune import __version__

    parser = argparse.ArgumentParser(prog="edgetune", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"edgetune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(f"edgetune.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edgetune.cli.{module}":
                continue  # command not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point. Exit codes: 0 ok, 1 a check failed (budget/regression), 2 usage or infrastructure error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except EdgetuneError as exc:
        print(f"edgetune {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only or unwritable folder, I/O error: no traceback
        print(f"edgetune {args.command}: error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency the light install leaves out: name the extra
        from edgetune._imports import missing_extra

        fix = missing_extra(exc)
        if fix is None:
            raise
        print(f"edgetune {args.command}: error: {fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgetune {args.command}: interrupted; finished work is kept on disk", file=sys.stderr)
        return 130
    return int(rc or 0)


def os_error_message(exc: OSError) -> str:
    """``cannot write PATH: No space left on device [Errno 28]. Fix: ...`` for an OSError from the machine."""
    from edgetune.search._trials import infrastructure_hint

    where = f" {exc.filename}" if exc.filename else ""
    if exc.filename2:
        where += f" -> {exc.filename2}"
    what = exc.strerror or str(exc)
    code = f" [Errno {exc.errno}]" if exc.errno else ""
    return f"cannot use{where}: {what}{code}. Fix: {infrastructure_hint(exc)}, then run the command again"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
