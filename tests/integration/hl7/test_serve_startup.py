"""What `mpi serve` tells its operator at start-up: about the registry it serves, and why it
cannot serve."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mllp_listener import start_listener, write_config

SAMPLE = Path(__file__).parents[3] / "data" / "synthetic" / "records.csv"
ADVICE = "run `mpi db reindex`"


def served_log(tmp_path: Path, database: Path) -> str:
    log = tmp_path / "serve.log"
    running = start_listener(write_config(tmp_path), f"sqlite:///{database}", log)
    running.stop(signal.SIGTERM)
    return log.read_text(encoding="utf-8")


def test_serve_advises_a_reindex_when_records_have_no_stored_form(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, nrows=200).to_csv(rows, index=False)
    database = tmp_path / "mpi.db"
    load = [
        sys.executable,
        "-m",
        "mpi.cli.main",
        "load",
        str(rows),
        "--db",
        f"sqlite:///{database}",
        "--quiet",
    ]
    subprocess.run(load, check=True, capture_output=True)
    assert ADVICE not in served_log(tmp_path, database)  # loaded by this mpi: every form is there

    # As a registry written before stored forms existed.
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM record_form")
    warning = served_log(tmp_path, database)
    assert "WARNING" in warning and "200 of 200 records have no stored form" in warning and ADVICE in warning

    reindex = [sys.executable, "-m", "mpi.cli.main", "db", "reindex", "--db", f"sqlite:///{database}"]
    subprocess.run(reindex, check=True, capture_output=True)
    assert ADVICE not in served_log(tmp_path, database)

    # As after an upgrade of the standardiser: the records loaded before have forms it never reads.
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE record_form SET form = 'v0' || form WHERE record_id < 150")
    warning = served_log(tmp_path, database)
    assert "written by another version of the standardiser" in warning and ADVICE in warning


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_in_use_is_reported_in_one_line_with_exit_code_2(tmp_path: Path, processes: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = [
            sys.executable,
            "-m",
            "mpi.cli.main",
            "serve",
            "--config",
            str(write_config(tmp_path)),
            "--db",
            f"sqlite:///{tmp_path / 'mpi.db'}",
            "--port",
            str(port),
            "--processes",
            processes,
        ]
        done = subprocess.run(serve, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}:" in done.stderr
    assert "Traceback" not in done.stderr
