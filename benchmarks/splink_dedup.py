"""Run Splink 5 (DuckDB) end to end and write the same files as ``mpi dedup``.

    python -m benchmarks.splink_dedup INPUT [INPUT ...] --out DIR --recipe febrl|synthetic
        [--link-only] [--threads 2] [--threshold P] [--pairs-floor P] [--seed 42]

Writes ``DIR/pairs.csv`` (record_id_l, record_id_r, match_probability, match_weight,
decision), ``DIR/clusters.csv`` (record_id, cluster_id, every record),
``DIR/summary.json`` (counts, seconds per step, DuckDB threads) and ``DIR/model.json``
(the trained Splink model). Pairs at or above ``--threshold`` (default: the recipe's, 0.5
for FEBRL, 0.95 for synthetic as in Splink's tutorials) have decision ``link``;
with ``--pairs-floor`` lower-scoring pairs down to that floor are kept with decision
``no_link``, so a threshold sweep can be computed without re-running. Clusters are the
connected components of the ``link`` pairs, as Splink's tutorials do.

It is a separate script so that each engine is timed as its own process.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import duckdb
from splink import DuckDBAPI, Linker

from benchmarks.splink_models import (
    LinkType,
    SplinkRecipe,
    febrl_recipe,
    synthetic_preparation,
    synthetic_recipe,
    train,
)


def _sql_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def connect(threads: int, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a fixed thread count (and memory cap, if given)."""
    connection = duckdb.connect()
    connection.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        connection.execute(f"SET memory_limit = '{memory_limit}'")
    return connection


def load_inputs(connection: duckdb.DuckDBPyConnection, inputs: list[Path]) -> list[duckdb.DuckDBPyRelation]:
    """Read each CSV as text (empty cells become NULL) into a DuckDB table."""
    relations = []
    for index, path in enumerate(inputs):
        table = f"input_{index}"
        connection.execute(
            f"CREATE OR REPLACE TABLE {table} AS "
            f"SELECT * FROM read_csv({_sql_literal(path)}, header = true, all_varchar = true)"
        )
        relations.append(connection.table(table))
    return relations


def prepare_inputs(
    connection: duckdb.DuckDBPyConnection, relations: list[duckdb.DuckDBPyRelation], recipe_name: str
) -> list[duckdb.DuckDBPyRelation]:
    """Apply the recipe's SQL cleaning (synthetic only: FEBRL is already clean) as new tables."""
    if recipe_name != "synthetic":
        return relations
    prepared = []
    for index, relation in enumerate(relations):
        table = f"prepared_{index}"
        select = ", ".join(synthetic_preparation(relation.columns))
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {select} FROM {relation.alias}")
        prepared.append(connection.table(table))
    return prepared


def build_recipe(name: str, link_type: LinkType, columns: list[str]) -> SplinkRecipe:
    if name == "febrl":
        return febrl_recipe(link_type, lean_output=True)
    if name == "synthetic":
        return synthetic_recipe(columns, link_type, lean_output=True)
    raise ValueError(f"unknown recipe {name!r}; choose febrl or synthetic")


def write_outputs(
    connection: duckdb.DuckDBPyConnection,
    *,
    predictions_table: str,
    clusters_table: str,
    unique_id: str,
    threshold: float,
    out: Path,
) -> tuple[int, int]:
    """Write pairs.csv and clusters.csv straight from DuckDB; return (link pairs, records)."""
    connection.execute(
        f"""
        COPY (
            SELECT {unique_id}_l AS record_id_l, {unique_id}_r AS record_id_r,
                   match_probability, match_weight,
                   CASE WHEN match_probability >= {threshold} THEN 'link' ELSE 'no_link' END AS decision
            FROM {predictions_table}
        ) TO {_sql_literal(out / "pairs.csv")} (HEADER, DELIMITER ',')
        """
    )
    connection.execute(
        f"""
        COPY (SELECT {unique_id} AS record_id, cluster_id FROM {clusters_table})
        TO {_sql_literal(out / "clusters.csv")} (HEADER, DELIMITER ',')
        """
    )
    link_pairs = scalar(
        connection, f"SELECT count(*) FROM {predictions_table} WHERE match_probability >= {threshold}"
    )
    return link_pairs, scalar(connection, f"SELECT count(*) FROM {clusters_table}")


def run(
    inputs: list[Path],
    out: Path,
    *,
    recipe_name: str,
    link_only: bool,
    threads: int,
    threshold: float | None,
    pairs_floor: float | None,
    seed: int,
    memory_limit: str | None = None,
) -> dict[str, Any]:
    """Train, predict and cluster with Splink; write the output files; return the summary."""
    if link_only and len(inputs) < 2:
        raise ValueError("--link-only needs at least two input files")
    out.mkdir(parents=True, exist_ok=True)
    link_type: LinkType = "link_only" if link_only else "dedupe_only"
    timings: dict[str, float] = {}

    started = time.perf_counter()
    connection = connect(threads, memory_limit)
    relations = prepare_inputs(connection, load_inputs(connection, inputs), recipe_name)
    timings["load_seconds"] = time.perf_counter() - started

    recipe = build_recipe(recipe_name, link_type, list(relations[0].columns))
    if threshold is not None:
        recipe.threshold = threshold
    threshold = recipe.threshold
    db_api = DuckDBAPI(connection=connection)
    registered = [db_api.register(relation) for relation in relations]
    linker = Linker(registered if link_only else registered[0], recipe.settings)

    timings.update(train(linker, recipe, seed=seed))

    started = time.perf_counter()
    floor = threshold if pairs_floor is None else min(pairs_floor, threshold)
    predictions = linker.inference.predict(threshold_match_probability=floor)
    timings["predict_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    )
    timings["cluster_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    link_pairs, records = write_outputs(
        connection,
        predictions_table=predictions.physical_name,
        clusters_table=clusters.physical_name,
        unique_id=recipe.unique_id_column,
        threshold=threshold,
        out=out,
    )
    linker.misc.save_model_to_json(str(out / "model.json"), overwrite=True)
    timings["write_seconds"] = time.perf_counter() - started

    summary: dict[str, Any] = {
        "engine": "splink",
        "splink_version": _splink_version(),
        "duckdb_version": duckdb.__version__,
        "recipe": recipe.name,
        "inputs": [str(path) for path in inputs],
        "link_type": link_type,
        "threads": threads,
        "threshold": threshold,
        "pairs_floor": floor,
        "records": records,
        "scored_pairs_kept": scalar(connection, f"SELECT count(*) FROM {predictions.physical_name}"),
        "link_pairs": link_pairs,
        "clusters": scalar(connection, f"SELECT count(DISTINCT cluster_id) FROM {clusters.physical_name}"),
        "seconds": timings,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single integer a query returns.

    Fetches every row: DuckDB 2 refuses further work on a connection with an unfinished result.
    """
    rows = connection.execute(sql).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"expected one row from {sql!r}, got {len(rows)}")
    return int(rows[0][0])


def _splink_version() -> str:
    import splink

    return str(splink.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recipe", choices=["febrl", "synthetic"], required=True)
    parser.add_argument("--link-only", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--pairs-floor", type=float, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 16GB")
    args = parser.parse_args()
    summary = run(
        args.inputs,
        args.out,
        recipe_name=args.recipe,
        link_only=args.link_only,
        threads=args.threads,
        threshold=args.threshold,
        pairs_floor=args.pairs_floor,
        seed=args.seed,
        memory_limit=args.memory_limit,
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
