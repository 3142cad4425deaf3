"""Should training flip images left–right? (`--flip auto|on|off`)

A horizontal flip doubles a small set for free when the classes look the same in a mirror (a
hornet, a cat, a cup), and teaches the model wrong things when they do not: a mirrored "2" or "R"
is no digit or letter at all, a mirrored "turn left" sign is a "turn right" one. Pictures cannot
tell us which case we are in, but class names usually can: `auto` turns the flip off when a class
name is a digit or a single letter, or names writing, signs or a side. The data doctor reports the
decision (`mirror_note`), so a person who knows better sets `--flip on` or `off`. No torch here.
"""
from __future__ import annotations

import re

_ASYMMETRIC_WORDS = re.compile(
    r"(^|[^a-z])(text|digit|number|numeral|letter|char|character|word|sign|logo|plate|arrow|"
    r"left|right|handwriting|writing|ocr)s?([^a-z]|$)", re.IGNORECASE)


def asymmetric_classes(classes: list[str]) -> list[str]:
    """The class names that suggest mirror-asymmetric objects (see the module docstring)."""
    out = []
    for name in classes:
        n = name.strip()
        if re.fullmatch(r"\d+|[A-Za-z]", n) or _ASYMMETRIC_WORDS.search(n):
            out.append(name)
    return out


def flip_wanted(flip: str, classes: list[str]) -> bool:
    if flip in ("on", "off"):
        return flip == "on"
    return not asymmetric_classes(classes)


def mirror_note(classes: list[str]) -> str | None:
    """One line for the data report when `--flip auto` will leave flipping off."""
    names = asymmetric_classes(classes)
    if not names:
        return None
    shown = ", ".join(repr(n) for n in names[:5]) + (", …" if len(names) > 5 else "")
    return (f"class names {shown} look mirror-asymmetric (digits, letters, text or signs): "
            "horizontal flip is off in augmentation (--flip on to use it anyway)")
