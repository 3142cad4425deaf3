"""Text shown to a person on a terminal: names that come from the data (class names, file
names, annotation fields) made harmless before they are printed.

A class name is whatever a data file says. Printed raw, a newline in it forges a line of its own,
an ESC sequence clears the screen or recolours what follows, a bidi override (U+202E) shows a
name reversed. `printable` writes each such character as its Python escape (`\\n`, `\\x1b`,
`\\u202e`), so the line says exactly what the file holds. JSON output and events are not passed
through it: they carry the exact text (JSON escapes control characters itself).
"""
from __future__ import annotations

import unicodedata

# control (Cc), format (Cf: bidi marks, overrides and isolates, zero-width spaces), line and
# paragraph separators, lone surrogates. Ordinary letters, spaces and symbols of any script pass.
_ESCAPED = {"Cc", "Cf", "Zl", "Zp", "Cs"}
_KEPT = {"\u200d"}          # zero-width joiner: inside emoji sequences, harmless


def printable(text: object) -> str:
    """`text` as one safe line: control, format and bidi characters written as escapes."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(_escape(ch) if unicodedata.category(ch) in _ESCAPED and ch not in _KEPT else ch for ch in s)


def _escape(ch: str) -> str:
    return ch.encode("unicode_escape", errors="backslashreplace").decode("ascii")
