"""Editing one command-line flag inside text that also holds other flags, quotes and comments.

A flag may be written `--name=value` or `--name value`. The editors below touch only the flag's
own words and leave every other byte of the text alone, so an env file or a unit keeps its
quoting, its other flags and its comments.
"""

from __future__ import annotations

import re

_VALUE = r"[^\s\"'\\]+"


def flag_pattern(flag: str) -> re.Pattern[str]:
    """Matches `--flag=value`, `--flag value` (value not starting with `-`) or a bare `--flag`."""
    name = re.escape(flag)
    return re.compile(
        rf"(?<![^\s\"'=]){name}(?:=(?P<eq>{_VALUE})?|[ \t]+(?P<sp>(?!-){_VALUE}))?(?=[\s\"'\\]|$)"
    )


def flag_values(text: str, flag: str) -> list[str]:
    """Every value the flag is given in `text`, in order (empty string for a bare flag)."""
    return [m.group("eq") or m.group("sp") or "" for m in flag_pattern(flag).finditer(text)]


def set_flag(text: str, flag: str, value: str) -> str:
    """Give every occurrence of the flag the value, keeping the form it was written in."""

    def replace(match: re.Match[str]) -> str:
        if match.group("sp") is not None:
            gap = match.group(0)[len(flag) : match.start("sp") - match.start()]
            return f"{flag}{gap}{value}"
        return f"{flag}={value}"

    return flag_pattern(flag).sub(replace, text)


def remove_flag(text: str, flag: str) -> str:
    """Remove every occurrence of the flag and its value, and the blank before it."""
    out: list[str] = []
    position = 0
    for match in flag_pattern(flag).finditer(text):
        start, end = match.start(), match.end()
        before = text[position:start]
        stripped = before.rstrip(" \t")
        if stripped and not stripped.endswith(("\n", '"', "'", "=")):
            before = stripped
        else:
            while end < len(text) and text[end] in " \t":
                end += 1
        out.append(before)
        position = end
    out.append(text[position:])
    return "".join(out)


def append_flag(value: str, flag: str, flag_value: str) -> str:
    """`value` (a list of flags) with `--flag=flag_value` added at the end."""
    addition = f"{flag}={flag_value}"
    return f"{value.rstrip()} {addition}" if value.strip() else addition
