"""``mpi serve``: the HL7 v2 MLLP listener (identity feeds, PIX and PDQ queries, PIX notifications).

Mounted on the main app with ``app.add_typer(serve_app)``.
"""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from mpi.cli.errors import handles_errors
from mpi.cli.options import DbOpt

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
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve HL7 v2 over MLLP until SIGTERM or Ctrl-C, finishing the messages in progress.

    Example: mpi serve --config mpi/hl7v2/example-config.toml --db sqlite:///mpi.db
    """
    from mpi.hl7v2.config import load_config
    from mpi.hl7v2.runtime import build_runtime, serve
    from mpi.service.bootstrap import bootstrap
    from mpi.service.engine_matcher import load_matcher
    from mpi.service.registry import utc_now
    from mpi.service.settings import load_settings

    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    hl7_config = load_config(config)
    if port is not None:
        hl7_config = hl7_config.model_copy(
            update={"listener": hl7_config.listener.model_copy(update={"port": port})}
        )
    settings = load_settings(database_url=db)
    matcher = load_matcher(settings)
    services = bootstrap(settings, matcher)
    try:
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
        runtime = build_runtime(hl7_config, settings, services.store, services.registry, matcher, utc_now)

        def ready(bound: int) -> None:
            # What start-up built (modules, model, PDQ directory) lives as long as the process:
            # leaving it out of garbage collection turns ~100 ms full collections, which hold
            # every connection's answers, into ~1 ms ones.
            gc.collect()
            gc.freeze()
            # One line on stdout that scripts (and tests) wait for before they send.
            print(f"mpi serve: listening on {hl7_config.listener.host}:{bound}", flush=True)

        serve(runtime, ready)
    finally:
        services.close()
