"""A compact set of strings seen so far, for duplicate detection over millions of rows."""

from __future__ import annotations

from array import array


class SeenIds:
    """Remembers strings as 64-bit hashes in an open-addressing table.

    8 bytes per slot, at most half full: about 16 MB for a million ids, where a ``set`` of
    the strings would hold about 110 MB. The price is a false "seen" when two different ids
    share a 64-bit hash: probability about n² / 2^65 (3e-8 for a million ids).
    """

    __slots__ = ("_count", "_limit", "_mask", "_table")

    def __init__(self, initial_slots: int = 1 << 16) -> None:
        size = 1 << max(initial_slots - 1, 1).bit_length()
        self._table = array("q", bytes(8 * size))
        self._mask = size - 1
        self._limit = size // 2
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, key: str) -> bool:
        """Remember ``key``; True if it was new, False if it had been seen."""
        h = hash(key) or 1  # 0 marks an empty slot
        table = self._table
        mask = self._mask
        i = h & mask
        while True:
            found = table[i]
            if found == 0:
                break
            if found == h:
                return False
            i = (i + 1) & mask
        table[i] = h
        self._count += 1
        if self._count > self._limit:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._table
        size = 2 * len(old)
        table = array("q", bytes(8 * size))
        mask = size - 1
        for h in old:
            if h:
                i = h & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = h
        self._table = table
        self._mask = mask
        self._limit = size // 2
