"""Where a value sits in an HL7 v2 message.

The same six coordinates (segment, its occurrence, field, repetition, component,
subcomponent) serve two notations: a *path* to read a value
(``PID-3[2].4.1``, ``OBX[2]-5``) and an *ERL*, the error location an
acknowledgement carries in ERR-2 (``PID^1^3^2^4^1``). Keeping one value object
for both means a reader that found a bad value can report exactly where it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_PATH = re.compile(
    r"(?P<segment>[A-Z][A-Z0-9]{2})(?:\[(?P<occurrence>[1-9][0-9]*)\])?"
    r"(?:-(?P<field>[1-9][0-9]*)(?:\[(?P<repetition>[1-9][0-9]*)\])?"
    r"(?:\.(?P<component>[1-9][0-9]*)(?:\.(?P<subcomponent>[1-9][0-9]*))?)?)?"
)
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a message; numbers are 1-based as in the HL7 standard.

    ``None`` means "not narrowed to this level": ``Location("PID", field=3)`` is the
    whole field, all repetitions included.
    """

    segment: str
    occurrence: int = 1
    field: int | None = None
    repetition: int | None = None
    component: int | None = None
    subcomponent: int | None = None

    def __post_init__(self) -> None:
        if not _SEGMENT_NAME.fullmatch(self.segment):
            raise ValueError(f"segment name must be 3 characters [A-Z][A-Z0-9]{{2}}, got {self.segment!r}")
        numbers = (self.occurrence, self.field, self.repetition, self.component, self.subcomponent)
        if any(number is not None and number < 1 for number in numbers):
            raise ValueError(f"HL7 positions are 1-based, got {numbers}")
        if self.field is None and (self.repetition, self.component, self.subcomponent) != (None, None, None):
            raise ValueError("a repetition, component or subcomponent needs a field")
        if self.subcomponent is not None and self.component is None:
            raise ValueError("a subcomponent needs a component")

    @classmethod
    def parse(cls, path: str) -> Location:
        """Read path notation: ``SEG[occurrence]-field[repetition].component.subcomponent``.

        Everything after the segment name is optional (``PID-3``, ``PID-5.1``,
        ``OBX[2]-5``, ``PID-3[2].4.1``). Raises ``ValueError`` for anything else.
        """
        return _parse_path(path)

    @classmethod
    def from_erl(cls, text: str, component_separator: str = "^") -> Location:
        """Read an ERL (``PID^1^3^1^1``), as carried by ERR-2 or ``HL7Error.location``."""
        parts = text.split(component_separator)
        if len(parts) > 6 or not parts[0]:
            raise ValueError(f"not an error location: {text!r}")
        try:
            numbers = [int(part) if part else None for part in parts[1:]]
        except ValueError:
            raise ValueError(f"not an error location: {text!r}") from None
        numbers += [None] * (5 - len(numbers))
        occurrence, field, repetition, component, subcomponent = numbers
        return cls(parts[0], occurrence or 1, field, repetition, component, subcomponent)

    def erl_parts(self) -> tuple[str, ...]:
        """The ERL components, trailing unset levels left out and skipped ones set to 1.

        ``PID-5.1`` becomes ``("PID", "1", "5", "1", "1")``: an ERL has no way to
        say "any repetition", and the first one is what a reader of the path got.
        """
        levels = (self.field, self.repetition, self.component, self.subcomponent)
        deepest = max((index for index, level in enumerate(levels) if level is not None), default=-1)
        return (
            self.segment,
            str(self.occurrence),
            *(str(level if level is not None else 1) for level in levels[: deepest + 1]),
        )

    def __str__(self) -> str:
        text = self.segment if self.occurrence == 1 else f"{self.segment}[{self.occurrence}]"
        if self.field is None:
            return text
        text += f"-{self.field}"
        if self.repetition is not None:
            text += f"[{self.repetition}]"
        if self.component is not None:
            text += f".{self.component}"
        if self.subcomponent is not None:
            text += f".{self.subcomponent}"
        return text


@lru_cache(maxsize=4096)
def _parse_path(path: str) -> Location:
    # Paths are written in code, so few distinct ones exist: caching makes a
    # lookup by path cost a dict hit instead of a regex match.
    match = _PATH.fullmatch(path)
    if match is None:
        raise ValueError(f"not a path like 'PID-3[2].4.1': {path!r}")
    groups = match.groupdict()

    def number(name: str) -> int | None:
        value = groups[name]
        return int(value) if value is not None else None

    return Location(
        groups["segment"],
        number("occurrence") or 1,
        number("field"),
        number("repetition"),
        number("component"),
        number("subcomponent"),
    )
