"""Write a file under a temporary name in the same folder, then ``os.replace`` it into place."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

__all__ = ["atomic_target"]


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    A reader never sees a half-written file under the final name; on an
    exception the temporary file is removed and the old file (if any) stays.
    """
    final = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(final))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
