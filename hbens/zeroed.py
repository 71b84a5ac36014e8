"""Zeroed uint8 masks whose pages are faulted in only where they are written, not 2 MB at a time.

Decoding a mask writes only its runs, a few hundred 4 kB pages of a 2048x2048 image; this
module keeps numpy's huge-page request from zeroing the rest (:func:`zeroed_mask`).  It uses the
C library's ``mincore`` and ``madvise`` on Linux and is plain ``np.zeros`` elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys

import numpy as np


def _load_libc():
    """The C library's ``mincore`` and ``madvise`` on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()
_PAGE = mmap.PAGESIZE
_MADV_NOHUGEPAGE = 15


def zeroed_mask(size: int | tuple[int, ...]) -> np.ndarray:
    """``np.zeros(size, np.uint8)`` for masks that are written only where their runs are.

    numpy asks the kernel for 2 MB huge pages on arrays of 4 MB and more, so the first write to a
    fresh 2048x2048 mask zeroes 2 MB at a time (and may compact memory first), although a bone's
    runs touch a few hundred 4 kB pages.  When the array is fresh memory (its middle page is not
    yet resident: a caller that keeps its masks), the request is withdrawn; recycled memory, which
    calloc has already zeroed (a caller that drops each mask), is left as it is.  The middle page
    is the one to ask about: the allocator's headers at either end of the array may already have
    brought in the huge pages around them.
    """
    flat = np.zeros(size, np.uint8)
    if _LIBC is None or flat.nbytes < 4 * _PAGE:
        return flat
    address = flat.__array_interface__["data"][0]
    start = -(-address // _PAGE) * _PAGE
    end = (address + flat.nbytes) // _PAGE * _PAGE
    middle = (address + flat.nbytes // 2) // _PAGE * _PAGE
    resident = ctypes.c_ubyte(0)
    if _LIBC.mincore(middle, _PAGE, ctypes.byref(resident)) == 0 and not resident.value & 1:
        _LIBC.madvise(start, end - start, _MADV_NOHUGEPAGE)
    return flat
