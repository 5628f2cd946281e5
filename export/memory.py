"""Keep freed memory in the process: an export allocates and frees tens of MB a page.

With glibc's defaults, large arrays are mapped fresh and returned to the system when
freed, so every page's pixels, masks and row buffers are faulted in again (thousands of
page faults a page, as much kernel time as the PNG encoding). `python -m export` raises
the thresholds once at start; the heap then reuses the same memory page after page.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Have glibc serve allocations up to 32 MiB from the heap and keep up to 1 GiB freed;
    False (and nothing changed) where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 1 << 30))
