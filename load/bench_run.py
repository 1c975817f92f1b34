"""What every benchmark's command line does the same way, kept in one place.

``load.bench_engine_service``, ``load.bench_gateway`` and ``exchange load`` each run one
coroutine that builds a JSON report, and they agree on what happens around it: logs on stderr,
the report on stdout, a short table on stderr, exit 1 when the run could not measure or the
report says it is not ok, 130 when interrupted; a SIGTERM stops the run like Ctrl-C, so that the
services and the broker are stopped on the way out instead of being left behind.
"""

import asyncio
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

from load.echo_service import configure_logging

log = structlog.get_logger("bench")

Report = dict[str, Any]


class BenchError(RuntimeError):
    """The benchmark could not measure: a service died, timed out, or answered wrongly."""


def cancel_on_sigterm() -> None:
    """Make a SIGTERM cancel the running task, as Ctrl-C does, so ``finally`` blocks run."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


@contextmanager
def workdir(keep: str, *, kept: str, prefix: str, what: str) -> Iterator[Path]:
    """``keep`` (created, left in place, a fresh subdirectory named ``kept`` with the time per
    run; ``what`` says in the log what is kept there), else a temporary directory named from
    ``prefix`` that is removed afterwards."""
    if keep:
        path = Path(keep) / time.strftime(f"{kept}-%Y%m%d-%H%M%S")
        path.mkdir(parents=True)
        log.info(f"keeping {what}", directory=str(path))
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as temporary:
        yield Path(temporary)


def ratio_of(a: float | None, b: float | None) -> float | None:
    """``a / b`` to three decimals, None when either is missing or ``b`` is 0."""
    return round(a / b, 3) if a is not None and b else None


def bench_main(
    run: Callable[[], Coroutine[Any, Any, Report]],
    table: Callable[[Report], str] | None = None,
) -> int:
    """A benchmark's ``main``: its log lines on stderr, then ``print_report``."""
    configure_logging()
    return print_report(run, table)


def print_report(
    run: Callable[[], Coroutine[Any, Any, Report]],
    table: Callable[[Report], str] | None = None,
    *,
    json_path: str | None = None,
) -> int:
    """Run ``run`` and print its report (stdout, JSON; or to ``json_path``) and ``table`` of it
    (stderr). Exit 1 when it raised ``BenchError`` or the report is not ``ok``, 130 when
    interrupted, else 0."""
    try:
        result = asyncio.run(run())
    except BenchError as error:
        log.error("benchmark failed", error=str(error))
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.error("benchmark interrupted")
        return 130
    text = json.dumps(result, indent=2)
    if json_path:
        Path(json_path).write_text(text + "\n", encoding="utf-8")
    else:
        print(text, flush=True)
    if table is not None:
        print(table(result), file=sys.stderr, flush=True)
    return 0 if result["ok"] else 1
