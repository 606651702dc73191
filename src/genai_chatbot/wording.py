"""Small helpers for the sentences people read: messages built from other messages.

Errors here embed text from elsewhere (an AWS or SDK error message, a validator's message) and end the
sentence themselves; when the embedded text brought its own full stop, the result read "..".
"""

from __future__ import annotations


def clause(text: str) -> str:
    """`text` without the full stop (and spaces) it may end with, to embed in a sentence that adds its own.

    An ellipsis is left alone: "waiting..." means something.
    """
    text = text.strip()
    if text.endswith(".") and not text.endswith("..."):
        return text[:-1].rstrip()
    return text
