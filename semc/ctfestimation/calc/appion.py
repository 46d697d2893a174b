"""Classic Appion conventions for CTF outputs (pure): the shortened image name of compat §3.5."""

from __future__ import annotations

import re

__all__ = ["short_image_name"]

_ATLAS = re.compile(r"^\d\d[a-z]{3}\d\d[a-z]?_")


def short_image_name(name: str) -> str:
    """Appion's ``shortenImageName``: base name without extension; the atlas/session prefix dropped for
    names starting ``NNaaaNN``; ``_vNN`` removed; runs of leading zeros ``_000NN`` collapsed to ``_0NN``;
    ``__`` to ``_``; no trailing ``_``. (The RCT ``_NN_<digits>en`` collapse is not reproduced.)"""
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".mrc"):
        base = base[:-4]
    base = _ATLAS.sub("", base)
    base = re.sub(r"_v\d\d", "", base)
    base = re.sub(r"_0{2,}(?=\d)", "_0", base)
    base = base.replace("__", "_").rstrip("_")
    return base
