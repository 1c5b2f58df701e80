"""printable: text that others sent, made safe to print on a terminal or in a log line."""

import unicodedata

# Characters that act instead of showing: controls (C0, DEL, C1: ESC starts a terminal command,
# CR and LF start a line), formats (bidi overrides and isolates, zero-width characters), line and
# paragraph separators, lone surrogates (which print cannot even encode), and code points this
# Python's Unicode does not know (a newer terminal may read them as any of these).
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})

# The backslash is escaped too, so that what is shown names one text only: a line break shows as
# `\n`, a backslash and an n that a client typed as `\\n`.
_SHORT_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str) -> str:
    """`text` with each character that is not ordinary text escaped as Python and Bash's `$'…'`
    write it (`\\x1b`, `\\n`, `\\u202e`); letters of any script, spaces and punctuation stay as
    they are. Escape once, where the text is printed: escaping again doubles the backslashes."""
    if text.isprintable() and "\\" not in text:
        return text  # The common case; isprintable() is False for every character escaped here.
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if unicodedata.category(char) not in ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
