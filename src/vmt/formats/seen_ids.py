"""A compact set of strings seen so far, for duplicate detection over millions of rows."""

from __future__ import annotations

from array import array


class SeenIds:
    """Remembers strings exactly, in a few flat arrays instead of a ``set`` of ``str`` objects.

    The strings' UTF-8 bytes go one after another into an arena; an open-addressing table (at
    most half full) holds, per slot, 32 bits of the string's hash and its index + 1. A string is
    "seen" only when its bytes equal a stored string's (no false duplicates on a hash
    collision). About 8 bytes per slot, 4 per string, plus the strings: ~45 MB for a million
    25-character ids, where a ``set`` of them would hold about 110 MB.
    """

    __slots__ = ("_arena", "_count", "_ends", "_limit", "_mask", "_table")

    def __init__(self, initial_slots: int = 1 << 16) -> None:
        size = 1 << max(initial_slots - 1, 1).bit_length()
        self._table = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._limit = size // 2
        self._count = 0
        self._arena = bytearray()
        self._ends = array("Q", [0])

    def __len__(self) -> int:
        return self._count

    def add(self, key: str) -> bool:
        """Remember ``key``; True if it was new, False if it had been seen."""
        data = key.encode("utf-8", "surrogatepass")
        h = hash(key)
        tag = (h >> 32) & 0xFFFFFFFF
        table = self._table
        mask = self._mask
        i = h & mask
        while True:
            slot = table[i]
            if slot == 0:
                break
            if slot >> 32 == tag:
                index = (slot & 0xFFFFFFFF) - 1
                ends = self._ends
                if self._arena[ends[index] : ends[index + 1]] == data:
                    return False
            i = (i + 1) & mask
        self._arena += data
        self._ends.append(len(self._arena))
        self._count += 1
        table[i] = (tag << 32) | self._count
        if self._count > self._limit:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._table
        size = 2 * len(old)
        table = array("Q", bytes(8 * size))
        mask = size - 1
        arena, ends = self._arena, self._ends
        for slot in old:
            if slot:
                index = (slot & 0xFFFFFFFF) - 1
                i = (
                    hash(arena[ends[index] : ends[index + 1]].decode("utf-8", "surrogatepass"))
                    & mask
                )
                while table[i]:
                    i = (i + 1) & mask
                table[i] = slot
        self._table = table
        self._mask = mask
        self._limit = size // 2
