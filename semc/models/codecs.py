"""Decoding and encoding the classic ``SEQ|`` text columns, without ``eval``.

Leginon writes sequences as the Python ``repr`` of a tuple or list
(``(1151, 1152)``, ``()``, ``[0.0, 1.5]``, ``((10, 20), (11, 20))``). They are
parsed with :func:`ast.literal_eval` — which evaluates literals only — and the
result is type-checked, so a malformed or hostile value is an error, never code.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from semc.base.errors import CorruptInput

__all__ = ["seq_decode", "seq_encode", "pairs_decode"]


def _literal_sequence(text: str | None, column: str) -> tuple | list:
    """The literal tuple/list a ``SEQ|`` text holds (NULL, empty or ``None`` -> ``()``)."""
    if text is None or text.strip() in ("", "None"):
        return ()
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise CorruptInput(f"column {column} does not hold a literal sequence: {text[:80]!r}") from None
    if not isinstance(value, (tuple, list)):
        raise CorruptInput(f"column {column} holds {type(value).__name__}, not a sequence: {text[:80]!r}")
    return value


def seq_decode(text: str | None, *, item_type: type = int, column: str = "SEQ") -> tuple:
    """Decode a ``SEQ|`` column into a tuple of ``item_type`` (NULL or empty -> ``()``).

    Raises
    ------
    CorruptInput
        If the text is not a literal tuple/list of numbers of that type.
    """
    value = _literal_sequence(text, column)
    out = []
    for item in value:
        if item_type is float and isinstance(item, (int, float)) and not isinstance(item, bool):
            out.append(float(item))
        elif item_type is int and isinstance(item, int) and not isinstance(item, bool):
            out.append(item)
        else:
            raise CorruptInput(f"column {column} holds {item!r}, expected {item_type.__name__}: {text[:80]!r}")
    return tuple(out)


def pairs_decode(text: str | None, *, column: str = "SEQ|bad_pixels") -> tuple[tuple[int, int], ...]:
    """Decode a sequence of ``(x, y)`` integer pairs (CorrectorPlanData bad pixels)."""
    value = _literal_sequence(text, column)
    pairs = []
    for item in value:
        if (not isinstance(item, (tuple, list)) or len(item) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)):
            raise CorruptInput(f"column {column} holds {item!r}, expected an (x, y) integer pair")
        pairs.append((item[0], item[1]))
    return tuple(pairs)


def seq_encode(values: Sequence | None, *, as_list: bool = False) -> str | None:
    """Encode numbers (or pairs) the way Leginon does: the repr of a tuple (or a list)."""
    if values is None:
        return None
    items = [tuple(v) if isinstance(v, (list, tuple)) else v for v in values]
    return repr(list(items)) if as_list else repr(tuple(items))
