"""Keep numpy's OpenBLAS on one thread.

The media tick's matrix products are small (sessions x 160 by 160 x a few dozen);
on a busy server OpenBLAS worker threads spinning for them cost far more than they
save, and the reactor thread is the one that must keep the 20 ms beat. numpy does
not expose the setting, so the library's own entry point is called through ctypes.
"""

from __future__ import annotations

import ctypes

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _loaded_openblas_paths() -> list[str]:
    import numpy  # noqa: F401  (makes sure the library is loaded)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


def limit_blas_threads(threads: int = 1) -> bool:
    """True when an OpenBLAS was found and told to use ``threads`` threads."""
    done = False
    for path in _loaded_openblas_paths():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(threads)
                done = True
                break
    return done
