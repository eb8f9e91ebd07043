"""The ``mpi`` command line: batch deduplication and linkage, training, evaluation, synthetic data.

Every command turns bad input into one clear message on stderr and exit code 2
(naming file, row and column where they apply), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from mpi.cli import lookup_commands  # noqa: F401  (registers person search, record show, audit)
from mpi.cli.consoles import stderr as _stderr
from mpi.cli.consoles import stdout as _stdout
from mpi.cli.errors import fail, handles_errors
from mpi.cli.load_command import load_app
from mpi.cli.registry_commands import registry_app
from mpi.cli.serve_command import serve_app

app = typer.Typer(
    name="mpi",
    help=(
        "mpi: a Master Patient Index. Deduplicate and link patient files (dedup); keep a registry of "
        "persons from source records (load, person, record, review, audit, export, db); serve HL7 v2 "
        "identity feeds, PIX and PDQ queries over MLLP (serve); train and inspect the model."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


InputsArg = Annotated[
    list[Path],
    typer.Argument(
        help="One or more CSV or Parquet files in the batch schema (record_id required).",
        show_default=False,
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Rename an input column to a batch-schema column, e.g. [cyan]--map surname=family_name[/]. "
        "Repeatable.",
        show_default=False,
    ),
]
MappingFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help='A mapping file: SRC=DST lines, or a TOML table [columns] of SRC = "DST".',
        show_default=False,
    ),
]
RulesOpt = Annotated[
    Path | None,
    typer.Option(help="Rules file (TOML). Default: the committed Luxembourg model.", show_default=False),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary, for scripts.")]
LinkOnlyOpt = Annotated[
    bool,
    typer.Option("--link-only", help="Only score pairs across different input files (linkage)."),
]


def _progress(quiet: bool) -> Any:
    from mpi.cli.progress import progress_bars

    return progress_bars(_stderr, quiet)


def _print_dedup_summary(summary: dict[str, Any], out: Path) -> None:
    counts = summary["counts"]
    lines = [
        f"[bold]{summary['mode']}[/] of {counts['records']:,} records with {escape(summary['rules'])}",
        f"  candidate pairs scored: {counts['candidate_pairs']:,}",
        f"  links: {counts['links']:,}   reviews: {counts['reviews']:,}   clusters: {counts['clusters']:,}",
    ]
    accuracy = summary.get("accuracy")
    if accuracy:
        pw = accuracy["pairwise_links"]
        cl = accuracy["clusters"]
        lines.append(
            f"  pairwise links: precision {pw['precision']:.4f}  recall {pw['recall']:.4f}  F1 {pw['f1']:.4f}"
        )
        lines.append(
            f"  clusters:       precision {cl['precision']:.4f}  recall {cl['recall']:.4f}  F1 {cl['f1']:.4f}"
        )
        lines.append(f"  blocking pair completeness: {summary['blocking']['pair_completeness']:.4f}")
    dropped = summary["model"]["comparisons_dropped"]
    if dropped:
        names = ", ".join(f"{d['name']} (no {'/'.join(d['missing_columns'])})" for d in dropped)
        lines.append(f"  comparisons dropped: {escape(names)}")
    invalid = summary["invalid_values"]
    if invalid:
        lines.append(
            "  [yellow]unusable values treated as missing:[/] "
            + ", ".join(f"{escape(column)}: {count}" for column, count in invalid.items())
        )
    for warning in summary["model"]["warnings"]:
        lines.append(f"  [yellow]warning:[/] {escape(warning)}")
    for rule in summary["blocking"]["rules"]:
        for block in rule["skipped_oversized_blocks"]:
            lines.append(
                f"  [yellow]warning:[/] blocking rule {escape(rule['name'])}: "
                f"block {escape(repr(block['key']))} has {block['size']} records, over max_block_size; "
                "its pairs were not compared by this rule"
            )
    lines.append(f"  {summary['timings_seconds']['total']:.1f} s; results in {escape(str(out))}/")
    _stdout.print("\n".join(lines), highlight=False)


@app.command(
    epilog="Example: mpi dedup data/synthetic/records.csv --truth data/synthetic/truth.csv --out out/\n\n"
    "FEBRL: mpi dedup dataset3.csv --rules matching_rules/linkage.toml --map rec_id=record_id "
    "--map given_name=given_names --map surname=family_name --map date_of_birth=birth_date "
    "--map suburb=city --out out/"
)
@handles_errors
def dedup(
    inputs: InputsArg,
    out: Annotated[Path, typer.Option(help="Output folder for pairs, clusters and summary.json.")],
    link_only: LinkOnlyOpt = False,
    rules: RulesOpt = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Trained parameters (JSON from `mpi train`). Default: train on the input first."),
    ] = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Truth file (record_id, entity id): adds precision and recall to the summary."),
    ] = None,
    truth_column: Annotated[
        str | None,
        typer.Option(help="A column of the input holding the true entity id: trains m and u supervised."),
    ] = None,
    output_format: Annotated[
        Literal["csv", "parquet"], typer.Option("--format", help="Format of pairs and clusters.")
    ] = "csv",
    quiet: QuietOpt = False,
) -> None:
    """Find duplicate records in one or more files (or link records across files with --link-only).

    Writes OUT/pairs.csv (record_id_l, record_id_r, match_probability, match_weight, decision),
    OUT/clusters.csv (record_id, cluster_id for every record) and OUT/summary.json.
    """
    from mpi.batch.io import parse_mapping
    from mpi.batch.local import JobOptions, run_dedup

    options = JobOptions(
        inputs=inputs,
        out=out,
        link_only=link_only,
        rules_path=rules,
        model_path=model,
        mapping=parse_mapping(map_ or [], mapping),
        truth_path=truth,
        truth_column=truth_column,
        fmt=output_format,
    )
    with _progress(quiet) as progress:
        summary = run_dedup(options, progress)
    if not quiet:
        _print_dedup_summary(summary, out)


@app.command(epilog="Example: mpi train data/synthetic/records.csv --out model.params.json")
@handles_errors
def train(
    inputs: InputsArg,
    out: Annotated[Path, typer.Option(help="Where to write the trained parameters (JSON).")],
    link_only: LinkOnlyOpt = False,
    rules: RulesOpt = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    truth_column: Annotated[
        str | None, typer.Option(help="Train supervised from this column of true entity ids.")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train the match model (m, u, prior) on input files and save it for `mpi dedup --model`."""
    from mpi.batch.io import parse_mapping
    from mpi.batch.local import JobOptions, prepare
    from mpi.batch.local import train as train_model
    from mpi.rules.loader import save_parameters

    options = JobOptions(
        inputs=inputs,
        link_only=link_only,
        rules_path=rules,
        mapping=parse_mapping(map_ or [], mapping),
        truth_column=truth_column,
    )
    with _progress(quiet) as progress:
        prepared = prepare(options, progress)
        params, _ = train_model(
            prepared, link_only=link_only, supervised=truth_column is not None, progress=progress
        )
    save_parameters(params, out)
    if not quiet:
        _stdout.print(f"trained {params.stamp} ({params.method}) on {params.trained_on_records:,} records")
        _stdout.print(f"  prior {params.prior:.3g}; saved to {escape(str(out))}")
        for warning in params.warnings:
            _stdout.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False)


@app.command(
    epilog="Example: mpi evaluate --truth data/synthetic/truth.csv --pairs out/pairs.csv --out out/eval"
)
@handles_errors
def evaluate(
    truth: Annotated[Path, typer.Option(help="Truth file: record_id and an entity id per record.")],
    pairs: Annotated[Path | None, typer.Option(help="pairs.csv/parquet from `mpi dedup`.")] = None,
    clusters: Annotated[Path | None, typer.Option(help="clusters.csv/parquet from `mpi dedup`.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for evaluation.json and precision_recall.png.")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Score pairs or clusters against a truth file: precision, recall, F1, PR curve, threshold table."""
    from mpi.batch.evaluate_job import evaluate_files

    if pairs is None and clusters is None:
        raise fail("give --pairs or --clusters (or both)")
    report = evaluate_files(truth, pairs, clusters, out)
    if not quiet:
        _stdout.print_json(json.dumps({k: v for k, v in report.items() if k != "threshold_table"}))
        if "threshold_table" in report:
            _stdout.print("threshold   precision  recall     F1")
            for row in report["threshold_table"]:
                _stdout.print(
                    f"{row['threshold']:<11} {row['precision']:<10.4f} {row['recall']:<10.4f} {row['f1']:.4f}"
                )


@app.command(epilog="Example: mpi explain data/synthetic/records.csv --left R000001 --right R000002")
@handles_errors
def explain(
    inputs: InputsArg,
    left: Annotated[str, typer.Option(help="record_id of the first record.")],
    right: Annotated[str, typer.Option(help="record_id of the second record.")],
    rules: RulesOpt = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Trained parameters. Default: the ones beside the rules, else train on the input."),
    ] = None,
    map_: MapOpt = None,
    mapping: MappingFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Explain the score of two records: each comparison's level and weight, in order (a waterfall)."""
    from mpi.batch.explain_job import explain_records

    result = explain_records(inputs, left, right, rules, model, map_ or [], mapping)
    if as_json:
        _stdout.print_json(json.dumps(result))
        return
    _stdout.print(f"{'comparison':<16} {'level':<28} {'weight':>8} {'tf adj':>7} {'total':>8}")
    prior = result["prior_weight"]
    _stdout.print(f"{'prior':<16} {'':<28} {prior:>8.2f} {'':>7} {prior:>8.2f}")
    for step in result["steps"]:
        _stdout.print(
            f"{step['comparison']:<16} {step['level']:<28} {step['weight']:>8.2f} "
            f"{step['term_frequency_adjustment']:>7.2f} {step['cumulative']:>8.2f}",
            highlight=False,
        )
    _stdout.print(
        f"match weight {result['match_weight']:.2f}, probability {result['match_probability']:.6f}, "
        f"decision: {result['decision']}"
    )


@app.command(epilog="Example: mpi synth --n 10000 --seed 1 --out data/synthetic")
@handles_errors
def synth(
    out: Annotated[Path, typer.Option(help="Output folder for records and truth.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of rows (records) to generate.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 1,
    output_format: Annotated[
        Literal["csv", "parquet"], typer.Option("--format", help="Format of the records and truth files.")
    ] = "csv",
    quiet: QuietOpt = False,
) -> None:
    """Generate a synthetic Luxembourg-like patient population with ground truth."""
    from mpi.synthetic.generator import generate, write

    with _progress(quiet) as progress:
        progress.start("generating")
        data = generate(n, seed)
        progress.finish()
        progress.start("writing")
        paths = write(data, out, output_format)
        progress.finish()
    if not quiet:
        _stdout.print(f"wrote {n:,} records: " + escape(", ".join(str(p) for p in paths.values())))


app.add_typer(registry_app)
app.add_typer(load_app)
app.add_typer(serve_app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
