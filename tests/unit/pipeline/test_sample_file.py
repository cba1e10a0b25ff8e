"""SampleFile: a samples file read again and again, restricted to some splits."""

from __future__ import annotations

from pathlib import Path

from vmt.domain import Box, Sample, Split
from vmt.pipeline import artifacts
from vmt.pipeline.artifacts import SampleFile

SPLITS = [Split.TRAINING, Split.VALIDATION, Split.TEST, Split.UNASSIGNED]


def test_only_yields_the_rows_of_its_splits_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    samples = [
        Sample(
            f"r{i}", f"gs://b/{i}.jpg", 64, 48, SPLITS[i % 4], (Box("car", 1, 2, 30, 40),), line=i
        )
        for i in range(20)
    ]
    with artifacts.sample_writer(path) as out:
        for sample in samples:
            out.write(sample)
    evaluated = SampleFile(path).only(Split.VALIDATION, Split.TEST)
    expected = [s for s in samples if s.split in (Split.VALIDATION, Split.TEST)]
    assert list(evaluated) == expected
    assert list(evaluated) == expected  # re-iterable
    assert list(SampleFile(path)) == samples
    assert list(SampleFile(path).only()) == []
