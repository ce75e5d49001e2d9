"""What every command-line entry point shares: logging, and errors turned into clear exits."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from pydantic import ValidationError

from model.errors import FaceregError
from services.config import Settings, env_variable
from services.storage.input_paths import printable
from services.storage.private_files import private_umask

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose misuse message is one line (`prog: error: ...`, no usage block) and exit 2.

    `--help` still prints the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def parser(doc: str | None) -> Parser:
    """The parser of a script whose module docstring is its help text."""
    return Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# A file the operator named that is missing, unreadable or of the wrong kind: their mistake, not a crash.
INPUT_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def settings_error(exc: ValidationError) -> str:
    """One line naming each invalid FACEREG_* variable and what is wrong with it."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        problems.setdefault(env_variable(str(error["loc"][0])) if error["loc"] else "FACEREG_*", error["msg"])
    plural = "s" if len(problems) > 1 else ""
    return f"invalid setting{plural} " + "; ".join(f"{name}: {msg}" for name, msg in problems.items())


def run(main: Callable[[], int | None]) -> None:
    """Run `main`; a facereg error, an invalid FACEREG_* setting, or a file that cannot be opened becomes one
    line on stderr and exit code 2, never a traceback.

    Everything a CLI writes (reports, plots, logs, quarantine) is private: umask 077 from the start. The data
    folder itself is tightened where a CLI opens it (services.context.open_context, the supervisor's start).
    """
    private_umask()
    try:
        code = main()
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        print(f"error: {settings_error(exc)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except FaceregError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except INPUT_ERRORS as exc:
        where = f": {printable(exc.filename)}" if exc.filename is not None else ""
        print(f"error: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, default=float), flush=True)
