"""name_uuids is uuid.uuid5, faster."""

from __future__ import annotations

import uuid

import pytest

from vmt.name_uuid import name_uuids

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "vmt-run:run-1")


@pytest.mark.parametrize(
    "name", ["", "dr-0000001/0", "row/error_score/", "ключ/feature/ütf-8 ✓", "x" * 1000]
)
def test_name_uuids_equal_uuid5(name: str) -> None:
    assert name_uuids(NAMESPACE)(name) == str(uuid.uuid5(NAMESPACE, name))


def test_many_names_in_one_namespace_stay_equal() -> None:
    uuid_of = name_uuids(uuid.NAMESPACE_DNS)
    for i in range(2000):
        assert uuid_of(f"row-{i}/{i % 7}") == str(
            uuid.uuid5(uuid.NAMESPACE_DNS, f"row-{i}/{i % 7}")
        )
