"""ER7 delimiters and escape sequences (HL7 v2.5 chapter 2.7).

A message names its own delimiters in MSH-1 and MSH-2; every value read from it is
unescaped with them, and every value written is escaped with them.
"""

from __future__ import annotations

import dataclasses

from mpi.errors import HL7Error
from mpi.hl7v2.codes import ErrorCode

NULL_MARKER = '""'
"""The HL7 explicit null: "remove this value", as opposed to an empty field ("no change")."""

_RESERVED = frozenset('"\r\n')
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_valid_delimiter(character: str) -> bool:
    """A delimiter must be one printable ASCII punctuation character.

    Letters and digits would collide with escape sequences (``\\X0D\\``) and
    segment names, and ``"`` would make the explicit null ambiguous.
    """
    return (
        len(character) == 1
        and character.isascii()
        and character.isprintable()
        and not character.isalnum()
        and not character.isspace()
        and character not in _RESERVED
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Delimiters:
    """The five ER7 delimiters, plus the optional 2.7+ truncation character."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""
    _needs_escaping: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        characters = [self.field, self.component, self.repetition, self.escape, self.subcomponent]
        if self.truncation:
            characters.append(self.truncation)
        if not all(is_valid_delimiter(character) for character in characters):
            raise ValueError(f"delimiters must be single ASCII punctuation characters: {characters!r}")
        if len(set(characters)) != len(characters):
            raise ValueError(f"delimiters must be distinct: {characters!r}")
        object.__setattr__(self, "_needs_escaping", frozenset([*characters, "\r", "\n", "\x00"]))

    @classmethod
    def from_header(cls, field_separator: str, encoding_characters: str) -> Delimiters:
        """Build from MSH-1 and MSH-2; malformed ones raise ``HL7Error`` (101/102) at MSH-1/MSH-2."""
        if not field_separator:
            raise HL7Error(
                "MSH-1 (field separator) is missing",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location="MSH^1^1",
                reject=True,
            )
        if not is_valid_delimiter(field_separator):
            raise HL7Error(
                f"MSH-1 (field separator) {field_separator!r} is not a punctuation character",
                code=ErrorCode.DATA_TYPE_ERROR,
                location="MSH^1^1",
                reject=True,
            )
        if not encoding_characters:
            raise HL7Error(
                "MSH-2 (encoding characters) is missing",
                code=ErrorCode.REQUIRED_FIELD_MISSING,
                location="MSH^1^2",
                reject=True,
            )
        if len(encoding_characters) not in (4, 5):
            raise HL7Error(
                f"MSH-2 (encoding characters) must have 4 or 5 characters, got {len(encoding_characters)}",
                code=ErrorCode.DATA_TYPE_ERROR,
                location="MSH^1^2",
                reject=True,
            )
        try:
            return cls(
                field=field_separator,
                component=encoding_characters[0],
                repetition=encoding_characters[1],
                escape=encoding_characters[2],
                subcomponent=encoding_characters[3],
                truncation=encoding_characters[4:],
            )
        except ValueError as error:
            raise HL7Error(
                f"MSH-1/MSH-2 delimiters are unusable: {error}",
                code=ErrorCode.DATA_TYPE_ERROR,
                location="MSH^1^2",
                reject=True,
            ) from None

    @property
    def encoding_characters(self) -> str:
        """The text of MSH-2."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation

    def escape_text(self, text: str) -> str:
        """Escape a value so that it can be written between these delimiters."""
        escape = self.escape
        if text == NULL_MARKER:
            # A value that is literally two quotes must not read back as the
            # explicit null: write the first quote as a hex escape.
            return f'{escape}X22{escape}"'
        if self._needs_escaping.isdisjoint(text):
            return text
        text = text.replace(escape, f"{escape}E{escape}")
        text = text.replace(self.field, f"{escape}F{escape}")
        text = text.replace(self.component, f"{escape}S{escape}")
        text = text.replace(self.subcomponent, f"{escape}T{escape}")
        text = text.replace(self.repetition, f"{escape}R{escape}")
        if self.truncation:
            text = text.replace(self.truncation, f"{escape}P{escape}")
        text = text.replace("\r", f"{escape}X0D{escape}")
        # Receivers (this one among them) refuse a raw NUL byte in a message.
        text = text.replace("\x00", f"{escape}X00{escape}")
        # \.br\ is the formatting escape for a line break, but its dot would be
        # split as data if a sender chose "." as a delimiter.
        if "." in self._needs_escaping:
            return text.replace("\n", f"{escape}X0A{escape}")
        return text.replace("\n", f"{escape}.br{escape}")

    def unescape_text(self, text: str, codec: str = "utf-8") -> str:
        """Decode escape sequences; ``codec`` decodes the bytes of ``\\Xhh..\\`` sequences.

        Character escapes (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\``), hex data
        (``\\Xhh\\``) and line breaks (``\\.br\\``) are decoded; other formatting
        escapes (highlighting, indentation) are kept as written, so no text is lost.
        Never raises: malformed sequences stay as written.
        """
        escape = self.escape
        if escape not in text:
            return text
        pieces: list[str] = []
        position = 0
        while True:
            opening = text.find(escape, position)
            if opening < 0:
                pieces.append(text[position:])
                break
            closing = text.find(escape, opening + 1)
            if closing < 0:
                pieces.append(text[position:])
                break
            pieces.append(text[position:opening])
            pieces.append(self._decode_sequence(text[opening + 1 : closing], codec))
            position = closing + 1
        return "".join(pieces)

    def _decode_sequence(self, sequence: str, codec: str) -> str:
        match sequence:
            case "F":
                return self.field
            case "S":
                return self.component
            case "T":
                return self.subcomponent
            case "R":
                return self.repetition
            case "E":
                return self.escape
            case "P" if self.truncation:
                return self.truncation
            case ".br":
                return "\n"
        hex_digits = sequence[1:]
        is_hex_data = sequence[:1] == "X" and hex_digits and _HEX_DIGITS.issuperset(hex_digits)
        if is_hex_data and len(hex_digits) % 2 == 0:
            try:
                return bytes.fromhex(hex_digits).decode(codec)
            except (ValueError, LookupError):
                pass
        return f"{self.escape}{sequence}{self.escape}"


DEFAULT_DELIMITERS = Delimiters()
