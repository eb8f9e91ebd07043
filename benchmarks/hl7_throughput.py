"""HL7 v2 over MLLP against a real ``mpi serve``: ADT^A04 throughput, PIX and PDQ query latency.

    python -m benchmarks.hl7_throughput [--rows 320000] [--seed 11] [--held-out 20000]
        [--feed-seconds 30] [--connections 4] [--pix 500] [--pdq 300]
        [--backends sqlite,postgres] [--postgres-url URL] [--load-budget 1800] [--processes 1]

The registry: ``mpi synth --n ROWS --seed SEED`` (about one person per three rows), all
rows but the last ``--held-out`` loaded into a fresh database with ``mpi load --quiet``.
Then ``mpi serve`` starts as its own process on that database (the example configuration's
listener settings, one domain and one sender per synthetic source, the matricule domain
``LUX``; ``--processes N``: ``mpi serve --processes N``, N server processes on one
listener), and this process talks plain MLLP to it over loopback (asyncio streams, its own
few lines of framing):

* **feed**: ``--connections`` connections at once, each sending ADT^A04 (HL7 2.5, the
  fields of ``mpi/hl7v2/examples/a04.hl7``: PID-3 local id with its authority and the
  matricule as ``LUX&1.3.182.4.4&ISO^NI``, PID-5 legal and birth names, PID-7, PID-8,
  PID-11, PID-13), waiting for its ACK and sending the next, for ``--feed-seconds``.
  Half the messages are the held-out rows (other sources' records of persons already
  loaded, and a few new persons), half are persons of another synthetic population
  (``--seed`` + 1, local ids prefixed ``N``): new patients. Reported: ACKs per second over
  the whole window and its slowest second, ACK latency (send to complete ACK frame)
  p50/p90/p99/max, the ACK codes, and the CPU the server used (from ``/proc``: its
  process, and on PostgreSQL the database server's processes) so a reader sees whether
  it is CPU-bound;
* **PIX**: ``--pix`` QBP^Q23 for loaded records' local ids, one at a time on one connection;
* **PDQ**: ``--pdq`` QBP^Q22 with family name, given name and birth date of loaded
  records, one at a time on one connection.

Targets of issue 4 (100,000 persons loaded): >= 1,000 A04/s sustained over 4 connections
with ACK p99 <= 50 ms; PIX p50 <= 2 ms; PDQ p50 <= 20 ms. The machine's load average is
recorded: the client, the server and the database share its cores.
Results: markdown on stdout, JSON in ``benchmarks/.work/hl7_throughput.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.load_1m import (
    DEFAULT_POSTGRES_URL,
    fresh_database,
    load_command,
    postgres_reachable,
    registry_counts,
)
from benchmarks.online_register import settle
from benchmarks.paths import PROJECT_ROOT, WORK_DIR, mpi_executable
from benchmarks.reporting import latency, machine_info, markdown_table, package_versions, write_json
from benchmarks.synthetic_data import ensure_dataset
from benchmarks.timing import log_tail, run_timed

RESULT_PATH = WORK_DIR / "hl7_throughput.json"
TARGETS = {"a04_per_second": 1000.0, "ack_p99_ms": 50.0, "pix_p50_ms": 2.0, "pdq_p50_ms": 20.0}
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
MATRICULE = "LUX&1.3.182.4.4&ISO"
SERVE_START_TIMEOUT = 600.0


# -- messages ---------------------------------------------------------------------------
def _hl7(text: str | None) -> str:
    """A value without HL7 delimiters (the synthetic data has none; this keeps it true)."""
    if not text:
        return ""
    return "".join(ch for ch in str(text) if ch not in "|^~\\&\r\n")


def _date(iso: str) -> str:
    year, _, rest = iso.partition("-")
    month, _, day = rest.partition("-")
    if not year:
        return ""
    if month in ("", "00"):
        return year
    return year + month + ("" if day in ("", "00") else day)


def a04(row: dict[str, str], control_id: str, timestamp: str) -> bytes:
    source = _hl7(row["source"])
    identifiers = f"{_hl7(row['local_id'])}^^^{source}^PI"
    if row.get("national_id"):
        identifiers += f"~{_hl7(row['national_id'])}^^^{MATRICULE}^NI"
    given = _hl7(row.get("given_names")).split(" ", 1)
    names = f"{_hl7(row.get('family_name'))}^{given[0]}^{given[1] if len(given) > 1 else ''}^^^^L"
    if row.get("birth_name"):
        names += f"~{_hl7(row['birth_name'])}^^^^^^M"
    street = " ".join(p for p in (_hl7(row.get("house_number")), _hl7(row.get("street"))) if p)
    address = f"{street}^^{_hl7(row.get('city'))}^^{_hl7(row.get('postcode'))}^{_hl7(row.get('country'))}^H"
    phone = f"{_hl7(row['phone'])}^PRN^PH" if row.get("phone") else ""
    segments = [
        f"MSH|^~\\&|{source}|{source}|MPI|ESANTE|{timestamp}||ADT^A04^ADT_A01|{control_id}|P|2.5",
        f"EVN|A04|{timestamp}",
        f"PID|1||{identifiers}||{names}||{_date(row.get('birth_date', ''))}|{_hl7(row.get('sex'))}"
        f"|||{address}||{phone}",
        "PV1|1|N",
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


def pix_query(row: dict[str, str], control_id: str, timestamp: str) -> bytes:
    return (
        f"MSH|^~\\&|PORTAL|ESANTE|MPI|ESANTE|{timestamp}||QBP^Q23^QBP_Q21|{control_id}|P|2.5\r"
        f"QPD|IHE PIX Query|{control_id}|{_hl7(row['local_id'])}^^^{_hl7(row['source'])}\r"
        "RCP|I\r"
    ).encode()


def pdq_query(row: dict[str, str], control_id: str, timestamp: str) -> bytes:
    criteria = [f"@PID.5.1.1^{_hl7(row['family_name'])}"]
    if row.get("given_names"):
        criteria.append(f"@PID.5.2^{_hl7(row['given_names']).split(' ')[0]}")
    if row.get("birth_date"):
        criteria.append(f"@PID.7^{_date(row['birth_date'])}")
    return (
        f"MSH|^~\\&|PORTAL|ESANTE|MPI|ESANTE|{timestamp}||QBP^Q22^QBP_Q21|{control_id}|P|2.5\r"
        f"QPD|IHE PDQ Query|{control_id}|{'~'.join(criteria)}\r"
        "RCP|I|10^RD\r"
    ).encode()


def config_text(sources: list[str]) -> str:
    """The listener configuration: one local domain and one sender per synthetic source."""
    parts = [
        '[listener]\nhost = "127.0.0.1"\nport = 0\nmax_connections = 64\nworkers = 4\n',
        '[identity]\napplication = "MPI"\nfacility = "ESANTE"\n',
        '[[domain]]\nnamespace = "LUX"\nuniversal_id = "1.3.182.4.4"\nuniversal_id_type = "ISO"\n'
        'kind = "matricule"\nidentifier_type = "NI"\n',
        '[[domain]]\nnamespace = "MPI"\nuniversal_id = "1.3.182.2.4.2"\nuniversal_id_type = "ISO"\n'
        'kind = "mpi"\n',
    ]
    for source in sources:
        parts.append(f'[[domain]]\nnamespace = "{source}"\n')
        parts.append(f'[[sender]]\napplication = "{source}"\nfacility = "*"\ndomains = ["{source}"]\n')
    parts.append('[[sender]]\napplication = "PORTAL"\nfacility = "*"\n')
    return "\n".join(parts)


# -- the server process -----------------------------------------------------------------
@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    def cpu_seconds(self) -> float:
        """The server's CPU: its process and, with ``--processes``, its worker processes."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return process_cpu_seconds(pid) + sum(process_cpu_seconds(int(child)) for child in children)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_server(config: Path, url: str, log: Path, processes: int = 1) -> Server:
    command = [str(mpi_executable()), "serve", "--config", str(config), "--db", url, "--port", "0"]
    if processes > 1:
        command += ["--processes", str(processes)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, cwd=PROJECT_ROOT, env={**os.environ}
        )
    assert process.stdout is not None
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            if b"listening on" in line:
                return Server(process, int(line.rsplit(b":", 1)[1]))
            if not line and process.poll() is not None:
                break
    process.kill()
    process.wait()
    raise RuntimeError(f"mpi serve did not start; see {log}")


def wait_for_directories(log: Path, processes: int) -> None:
    """Until every server process has logged its PDQ directory loaded."""
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while time.monotonic() < deadline:
        if log.read_text(encoding="utf-8", errors="replace").count("PDQ directory loaded") >= processes:
            return
        time.sleep(0.2)
    raise RuntimeError(f"mpi serve did not load its PDQ directory; see {log}")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, from /proc/PID/stat (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """CPU of every process named ``postgres`` on this machine (the database server's share)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += process_cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


# -- the client -------------------------------------------------------------------------
async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> bytes:
    writer.write(START_BLOCK + payload + END_BLOCK)
    await writer.drain()
    answer = await reader.readuntil(END_BLOCK)
    return answer[answer.index(START_BLOCK) + 1 : -len(END_BLOCK)]


def ack_code(answer: bytes) -> str:
    for segment in answer.split(b"\r"):
        if segment.startswith(b"MSA|"):
            return segment.split(b"|")[1].decode("ascii", "replace")
    return "none"


def query_status(answer: bytes) -> str:
    for segment in answer.split(b"\r"):
        if segment.startswith(b"QAK|"):
            return segment.split(b"|")[2].decode("ascii", "replace")
    return "none"


async def feed(port: int, streams: list[list[bytes]], seconds: float) -> dict[str, Any]:
    """Each connection sends its messages one after another until the time is up."""
    latencies: list[float] = []
    finished_at: list[float] = []
    codes: Counter[str] = Counter()
    started = time.perf_counter()
    deadline = started + seconds

    async def connection(messages: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        try:
            for payload in messages:
                sent = time.perf_counter()
                if sent >= deadline:
                    return
                answer = await exchange(reader, writer, payload)
                done = time.perf_counter()
                latencies.append(done - sent)
                finished_at.append(done - started)
                codes[ack_code(answer)] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(connection(messages) for messages in streams))
    elapsed = time.perf_counter() - started
    per_second = np.bincount(np.array(finished_at, dtype=np.int64)) if finished_at else np.zeros(1)
    whole_seconds = per_second[: int(elapsed)] if int(elapsed) >= 1 else per_second
    return {
        "messages": len(latencies),
        "elapsed_seconds": round(elapsed, 3),
        "per_second": round(len(latencies) / elapsed, 1),
        "slowest_second": int(whole_seconds[1:].min()) if len(whole_seconds) > 1 else None,
        "ack_codes": dict(codes),
        "ack": latency(latencies),
        "exhausted": len(latencies) == sum(len(s) for s in streams),
    }


async def queries(port: int, payloads: list[bytes]) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    seconds, statuses = [], Counter[str]()
    try:
        for payload in payloads:
            sent = time.perf_counter()
            answer = await exchange(reader, writer, payload)
            seconds.append(time.perf_counter() - sent)
            statuses[f"{ack_code(answer)}/{query_status(answer)}"] += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return {**latency(seconds), "answers": dict(statuses)}


# -- one backend ------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    loaded: Path
    feed: list[list[bytes]]
    pix: list[bytes]
    pdq: list[bytes]
    sources: list[str]


def split(records: Path, held_out: int) -> tuple[Path, pd.DataFrame]:
    folder = WORK_DIR / "hl7_throughput" / records.parent.name
    loaded = folder / f"loaded_{held_out}.csv"
    frame = pd.read_csv(records, dtype=str, keep_default_na=False)
    if not loaded.exists():
        folder.mkdir(parents=True, exist_ok=True)
        frame.iloc[:-held_out].to_csv(loaded, index=False)
    return loaded, frame


def workload(args: argparse.Namespace) -> Workload:
    dataset = ensure_dataset(args.rows, args.seed, "mpi")
    loaded, frame = split(dataset.records, args.held_out)
    known = frame.iloc[-args.held_out :]
    others = pd.read_csv(
        ensure_dataset(args.held_out, args.seed + 1, "mpi").records, dtype=str, keep_default_na=False
    )
    others["local_id"] = "N" + others["local_id"]
    rows = [*known.to_dict("records"), *others.to_dict("records")]
    random.Random(args.seed).shuffle(rows)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    streams: list[list[bytes]] = [[] for _ in range(args.connections)]
    for number, row in enumerate(rows):
        streams[number % args.connections].append(a04(row, f"B{number:07d}", stamp))
    sample = frame.iloc[: -args.held_out].sample(n=max(args.pix, args.pdq), random_state=args.seed)
    samples = sample.to_dict("records")
    pix = [pix_query(row, f"X{n:06d}", stamp) for n, row in enumerate(samples[: args.pix])]
    pdq = [
        pdq_query(row, f"D{n:06d}", stamp) for n, row in enumerate(samples[: args.pdq]) if row["family_name"]
    ]
    sources = sorted(set(frame["source"]) | set(others["source"]))
    return Workload(loaded, streams, pix, pdq, sources)


def run_backend(backend: str, work: Workload, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(backend, f"hl7_{args.rows}", args.postgres_url) as url:
        command = [*load_command(), str(work.loaded), "--db", url, "--quiet"]
        logs = WORK_DIR / "logs"
        load = run_timed(command, logs / f"hl7_load_{backend}.log", timeout_seconds=args.load_budget)
        result: dict[str, Any] = {"load": load.as_dict()}
        if not load.succeeded:
            return {**result, "status": "load failed", "log_tail": log_tail(load)}
        settle(url)
        result["before"] = registry_counts(url)
        config = WORK_DIR / "hl7_throughput" / "hl7.toml"
        config.write_text(config_text(work.sources), encoding="utf-8")
        print(f"{backend}: loaded in {load.wall_seconds:.0f} s; starting mpi serve ...", file=sys.stderr)
        started = time.perf_counter()
        serve_log = logs / f"hl7_serve_{backend}.log"
        server = start_server(config, url, serve_log, args.processes)
        result["serve_start_seconds"] = round(time.perf_counter() - started, 1)
        try:
            # The feed is timed on a started server: its PDQ directories (one per process) load in
            # the background after it starts listening, once.
            wait_for_directories(serve_log, args.processes)
            result["directory_loaded_seconds"] = round(time.perf_counter() - started, 1)
            server_cpu, db_cpu = server.cpu_seconds(), postgres_cpu_seconds()
            client_cpu, load_before = time.process_time(), os.getloadavg()[0]
            result["feed"] = asyncio.run(feed(server.port, work.feed, args.feed_seconds))
            elapsed = result["feed"]["elapsed_seconds"]
            result["feed"]["server_cpu_cores"] = round((server.cpu_seconds() - server_cpu) / elapsed, 2)
            if backend == "postgres":
                result["feed"]["postgres_cpu_cores"] = round((postgres_cpu_seconds() - db_cpu) / elapsed, 2)
            result["feed"]["client_cpu_cores"] = round((time.process_time() - client_cpu) / elapsed, 2)
            result["feed"]["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            result["pix"] = asyncio.run(queries(server.port, work.pix))
            server_cpu, started = server.cpu_seconds(), time.perf_counter()
            result["pdq"] = asyncio.run(queries(server.port, work.pdq))
            result["pdq"]["server_cpu_ms_per_query"] = round(
                (server.cpu_seconds() - server_cpu) * 1000 / max(len(work.pdq), 1), 2
            )
        finally:
            result["serve_exit_code"] = server.stop()
        result["after"] = registry_counts(url)
        return {**result, "status": "ok"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=320_000, help="synthetic rows (about 3 per person)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--held-out", type=int, default=20_000, help="rows not loaded, sent as A04")
    parser.add_argument("--feed-seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--pix", type=int, default=500)
    parser.add_argument("--pdq", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--load-budget", type=float, default=1800.0, help="seconds for the bulk load")
    parser.add_argument("--processes", type=int, default=1, help="mpi serve --processes (server processes)")
    args = parser.parse_args(argv)

    work = workload(args)
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        if backend == "postgres" and (why := postgres_reachable(args.postgres_url)) is not None:
            results[backend] = {"status": "not run", "reason": why}
            continue
        print(f"{backend}: loading {args.rows - args.held_out:,} rows ...", file=sys.stderr)
        results[backend] = run_backend(backend, work, args)

    write_json(
        RESULT_PATH,
        {
            "benchmark": "hl7_throughput",
            "machine": machine_info(),
            "versions": package_versions(["mpi", "sqlalchemy", "psycopg", "numpy", "rapidfuzz"]),
            "dataset": {"rows": args.rows, "seed": args.seed, "held_out": args.held_out},
            "server_processes": args.processes,
            "command": " ".join(["python -m benchmarks.hl7_throughput", *(argv or sys.argv[1:])]),
            "targets": TARGETS,
            "results": results,
        },
    )
    print(report(results, args))
    return 0 if all(r["status"] in ("ok", "not run") for r in results.values()) else 1


def _cores(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    feed_rows, query_rows = [], []
    for backend, r in results.items():
        if r["status"] != "ok":
            feed_rows.append([backend, r["status"], *([None] * 10)])
            continue
        f = r["feed"]
        codes = ", ".join(f"{k} {v}" for k, v in sorted(f["ack_codes"].items()))
        feed_rows.append(
            [
                backend, f"{r['before']['person']:,}", f["messages"], f["elapsed_seconds"], f["per_second"],
                f["slowest_second"], f["ack"]["p50_ms"], f["ack"]["p99_ms"], f["ack"]["max_ms"], codes,
                _cores(f["server_cpu_cores"]), _cores(f.get("postgres_cpu_cores")),
            ]
        )  # fmt: skip
        query_rows.append(
            [
                backend, r["pix"]["p50_ms"], r["pix"]["p99_ms"], r["pdq"]["p50_ms"], r["pdq"]["p99_ms"],
                r["pdq"]["server_cpu_ms_per_query"],
                ", ".join(f"{k} {v}" for k, v in sorted(r["pdq"]["answers"].items())),
            ]
        )  # fmt: skip
    lines = [
        f"ADT^A04 over {args.connections} MLLP connections for {args.feed_seconds:.0f} s "
        f"(each: send, wait for the ACK, next); {args.processes} server process(es)\n",
        markdown_table(
            [
                "backend", "persons loaded", "ACKs", "seconds", "A04/s", "slowest second", "ACK p50 ms",
                "ACK p99 ms", "ACK max ms", "ACK codes", "server CPU cores", "PostgreSQL CPU cores",
            ],
            feed_rows,
        ),
        f"\nQueries one at a time on one connection: {args.pix} PIX (QBP^Q23), "
        f"{args.pdq} PDQ (QBP^Q22, family + given name + birth date)\n",
        markdown_table(
            [
                "backend", "PIX p50 ms", "PIX p99 ms", "PDQ p50 ms", "PDQ p99 ms", "PDQ server CPU ms",
                "PDQ answers",
            ],
            query_rows,
        ),
        "\nStart-up: seconds from launching `mpi serve` to listening, and to its PDQ directory loaded\n",
        markdown_table(
            ["backend", "listening s", "PDQ directory loaded s"],
            [
                [b, r.get("serve_start_seconds"), r.get("directory_loaded_seconds")]
                for b, r in results.items()
                if r["status"] == "ok"
            ],
        ),
        f"\nTargets: {TARGETS}. JSON: {RESULT_PATH}",
    ]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
