"""``mpi serve``: the HL7 v2 MLLP listener (identity feeds, PIX and PDQ queries, PIX notifications).

Mounted on the main app with ``app.add_typer(serve_app)``.
"""

from __future__ import annotations

import gc
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mpi.cli.errors import handles_errors
from mpi.cli.options import DbOpt

if TYPE_CHECKING:
    from mpi.hl7v2.config import HL7Config
    from mpi.service.bootstrap import Services
    from mpi.service.settings import Settings

serve_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@serve_app.command("serve")
@handles_errors
def serve(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            help="The listener's TOML configuration: address, TLS, domains, senders, consumers "
            "(see mpi/hl7v2/example-config.toml).",
            exists=False,
        ),
    ],
    db: DbOpt = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Listen on this port instead of the configured one (0: any free port)."),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Server processes sharing the listener (default: the configuration's, 1); more use "
            "more cores on PostgreSQL.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve HL7 v2 over MLLP until SIGTERM or Ctrl-C, finishing the messages in progress.

    Example: mpi serve --config mpi/hl7v2/example-config.toml --db sqlite:///mpi.db
    """
    from mpi.hl7v2.config import load_config
    from mpi.service.bootstrap import bootstrap
    from mpi.service.settings import load_settings

    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic announces its migration context at every start at INFO: not news for an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    hl7_config = load_config(config)
    if port is not None:
        hl7_config = hl7_config.model_copy(
            update={"listener": hl7_config.listener.model_copy(update={"port": port})}
        )
    if processes is not None:
        hl7_config = hl7_config.model_copy(
            update={"listener": hl7_config.listener.model_copy(update={"processes": processes})}
        )
    settings = load_settings(database_url=db)
    listener = hl7_config.listener
    if listener.processes == 1:
        _serve_one(hl7_config, settings)
        return
    from mpi.hl7v2.processes import Supervisor, listening_socket

    if settings.is_sqlite:
        logging.getLogger("mpi.serve").warning(
            "SQLite commits one writer at a time: %d processes answer queries side by side, but "
            "feeds wait for each other's commits (longer ACK delays); PostgreSQL scales out",
            listener.processes,
        )

    # The schema is brought up to date once, before any worker starts; the parent then holds no
    # connection, thread or model when it forks (the first worker checks the stored forms).
    bootstrap(settings).close()
    sock = listening_socket(listener.host, listener.port)
    workers = settings.model_copy(update={"auto_migrate": False})

    def worker(index: int, shared: socket.socket, listening: Callable[[], None]) -> None:
        # Only worker 0 sends PIX update notifications: each goes out once, in order.
        first = index == 0
        _serve_one(hl7_config, workers, shared, sends_notifications=first, warns=first, listening=listening)

    def ready() -> None:
        print(f"mpi serve: listening on {listener.host}:{sock.getsockname()[1]}", flush=True)

    code = Supervisor(listener.processes, sock, worker, grace_seconds=listener.shutdown_grace_seconds).run(
        ready
    )
    sock.close()
    if code != 0:
        raise typer.Exit(code)


def _warn_if_forms_need_reindex(services: Services) -> None:
    coverage = services.registry.form_coverage()
    if coverage.needs_reindex:
        missing = (
            f"{coverage.records - coverage.with_form} of {coverage.records} records have no stored form"
            if coverage.current
            else "stored forms were written by another version of the standardiser"
        )
        logging.getLogger("mpi.serve").warning(
            "%s: those records are standardised again at every match, which is correct but "
            "slower; run `mpi db reindex`",
            missing,
        )


def _serve_one(
    hl7_config: HL7Config,
    settings: Settings,
    sock: socket.socket | None = None,
    *,
    sends_notifications: bool = True,
    warns: bool = True,
    listening: Callable[[], None] | None = None,
) -> None:
    """One server process: on the configured address, or on ``sock`` as one of several workers
    (``listening`` is then called once it accepts, instead of printing the ready line)."""
    from mpi.hl7v2.runtime import build_runtime, serve
    from mpi.service.bootstrap import bootstrap
    from mpi.service.engine_matcher import load_matcher
    from mpi.service.registry import utc_now

    matcher = load_matcher(settings)
    services = bootstrap(settings, matcher)
    try:
        if warns:
            _warn_if_forms_need_reindex(services)
        runtime = build_runtime(
            hl7_config,
            settings,
            services.store,
            services.registry,
            matcher,
            utc_now,
            sends_notifications=sends_notifications,
        )

        def ready(bound: int) -> None:
            # What start-up built (modules, model) lives as long as the process: leaving it out
            # of garbage collection turns ~100 ms full collections, which hold every connection's
            # answers, into ~1 ms ones. The PDQ directory, loaded after this, is numpy arrays,
            # which the collector does not walk.
            gc.collect()
            gc.freeze()
            if listening is not None:
                listening()
                return
            # One line on stdout that scripts (and tests) wait for before they send.
            print(f"mpi serve: listening on {hl7_config.listener.host}:{bound}", flush=True)

        serve(runtime, ready, sock)
    finally:
        services.close()
