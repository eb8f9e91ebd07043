"""Load and validate rules and trained-parameter files, naming the file and key on error."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mpi.errors import RulesError
from mpi.rules.parameters import TrainedParameters
from mpi.rules.schema import Rules

DEFAULT_RULES_NAME = "default.toml"


def default_rules_path() -> Path:
    """The committed Luxembourg default model, packaged with mpi."""
    return Path(str(resources.files("mpi.matching_rules").joinpath(DEFAULT_RULES_NAME)))


def default_parameters_path() -> Path:
    return parameters_path_for(default_rules_path())


def parameters_path_for(rules_path: Path) -> Path:
    """Trained parameters live beside the rules: ``default.toml`` -> ``default.params.json``."""
    return rules_path.with_name(rules_path.stem + ".params.json")


def _key_of(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"])


def _raise_validation(path: Path, exc: ValidationError) -> RulesError:
    first = exc.errors()[0]
    extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return RulesError(str(path), _key_of(first), f"{first['msg']}{extra}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RulesError(str(path), "", "file not found") from None
    except OSError as exc:
        raise RulesError(str(path), "", f"cannot read: {exc.strerror}") from None


def load_rules(path: Path | None = None) -> Rules:
    """Read a rules TOML file; the packaged default when ``path`` is None."""
    path = path or default_rules_path()
    try:
        raw = tomllib.loads(_read(path).decode("utf-8"))
    except UnicodeDecodeError:
        raise RulesError(str(path), "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(str(path), "", f"not valid TOML: {exc}") from None
    try:
        rules = Rules.model_validate(raw)
    except ValidationError as exc:
        raise _raise_validation(path, exc) from None
    _check_references(path, rules)
    return rules


def _check_references(path: Path, rules: Rules) -> None:
    from mpi.rules.columns import KNOWN_COLUMNS  # one list shared with the standardiser contract

    for section, items in (
        ("blocking.rules", rules.blocking.rules),
        ("training.em_blocking", rules.training.em_blocking),
        ("training.deterministic_rules", rules.training.deterministic_rules),
    ):
        for i, rule in enumerate(items):
            for key in rule.keys:
                if key not in KNOWN_COLUMNS:
                    raise RulesError(str(path), f"{section}.{i}.keys", f"unknown column {key!r}")
    names = {c.name for c in rules.comparisons}
    for i, ref in enumerate(rules.thresholds.never_link):
        if ref.comparison not in names:
            raise RulesError(
                str(path), f"thresholds.never_link.{i}.comparison", f"unknown comparison {ref.comparison!r}"
            )
    for i, comparison in enumerate(rules.comparisons):
        for column in (comparison.column, *comparison.alternates):
            if column not in KNOWN_COLUMNS:
                raise RulesError(str(path), f"comparison.{i}.column", f"unknown column {column!r}")


def load_parameters(path: Path, rules: Rules) -> TrainedParameters:
    """Read trained parameters and check they were trained for ``rules``."""
    try:
        raw = json.loads(_read(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RulesError(str(path), "", f"not valid JSON: {exc}") from None
    try:
        params = TrainedParameters.model_validate(raw)
    except ValidationError as exc:
        raise _raise_validation(path, exc) from None
    if (params.rules_name, params.rules_version) != (rules.model.name, rules.model.version):
        raise RulesError(
            str(path),
            "rules_version",
            f"trained for rules {params.stamp}, but the rules in use are {rules.stamp}",
        )
    return params


def save_parameters(params: TrainedParameters, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(params.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
