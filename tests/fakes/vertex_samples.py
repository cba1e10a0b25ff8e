"""Builders for Vertex backend tests: small real images on disk and samples over them."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from vmt.domain import Box, Sample, Split

WIDTH, HEIGHT = 96, 48
"""Not square, so a box with x and y swapped lands somewhere else."""


def make_samples(
    folder: Path,
    *,
    training: int = 12,
    validation: int = 3,
    test: int = 3,
    labels: tuple[str, ...] = ("car", "person"),
    short_label: tuple[str, int] | None = None,
) -> list[Sample]:
    """PNG files in ``folder`` and one sample each; every image has one box per label, except
    that ``short_label=(name, n)`` puts ``name`` on only ``n`` training images."""
    folder.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    plan = [Split.TRAINING] * training + [Split.VALIDATION] * validation + [Split.TEST] * test
    training_seen = 0
    for index, split in enumerate(plan):
        path = folder / f"img{index:03d}.png"
        Image.new("RGB", (WIDTH, HEIGHT), (index * 7 % 255, 90, 160)).save(path)
        names = list(labels)
        if split is Split.TRAINING:
            training_seen += 1
        if short_label is not None:
            name, count = short_label
            if split is Split.TRAINING and training_seen > count:
                names = [n for n in names if n != name]
            elif name not in names:
                names.append(name)
        boxes = tuple(
            Box(name, 4 + 20 * k, 2 + 4 * k, 24 + 20 * k, 30 + 4 * k)
            for k, name in enumerate(names)
        )
        samples.append(
            Sample(
                data_row_id=f"row{index:03d}",
                image_uri=str(path),
                width=None if index % 2 else WIDTH,
                height=None if index % 2 else HEIGHT,
                split=split,
                boxes=boxes,
                line=index + 1,
            )
        )
    return samples
