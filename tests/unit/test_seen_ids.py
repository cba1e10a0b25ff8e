from vmt.formats.seen_ids import SeenIds


def test_add_reports_new_and_seen_across_growth() -> None:
    seen = SeenIds(initial_slots=4)
    ids = [f"clf{i:08d}" for i in range(5000)]
    assert all(seen.add(i) for i in ids)
    assert len(seen) == 5000
    assert not any(seen.add(i) for i in ids)
    assert seen.add("") and not seen.add("")
    assert len(seen) == 5001


def test_memory_is_eight_bytes_per_slot_at_most_half_full() -> None:
    seen = SeenIds()
    for i in range(100_000):
        seen.add(str(i))
    slots = len(seen._table)
    assert seen._table.itemsize == 8 and 100_000 <= slots // 2 < 200_000
