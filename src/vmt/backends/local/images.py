"""Making each sample's image usable by the local trainer: a local path or ``file://`` URI is
used in place (where the outbound rules allow local files: CLI runs on an export file), an
http(s) URL is downloaded once into a cache folder (``ImageFetcher``: the one image seam, with
its retries, outbound policy, sniffing, redaction and reason codes); the image header gives
the type and size, which fill what the export left out.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from vmt.backends.image_source import (
    FetchPolicy,
    ImageFetcher,
    ImageRejected,
)
from vmt.domain import Rejection, Sample
from vmt.formats.outbound_policy import OutboundRules
from vmt.reasons import Reason


class ImageResolver:
    """Resolves samples' images into ``cache_dir``; reusable across calls (the cache persists,
    so a prepare step repeated after a crash downloads nothing twice)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        policy: FetchPolicy | None = None,
        fetcher: ImageFetcher | None = None,
        rules: OutboundRules | None = None,
        concurrency: int = 8,
    ) -> None:
        """``rules``: what image locations may reach (``fetcher``'s own when one is given;
        default the service's rules without an allowlist)."""
        self._cache_dir = cache_dir
        self._rules = rules
        self._fetcher = fetcher
        self._policy = policy
        self._concurrency = concurrency

    def resolve_all(self, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        """Each sample, in order, made usable or rejected; a bounded number in flight."""
        owns_fetcher = self._fetcher is None
        fetcher = self._fetcher or ImageFetcher(
            self._policy, rules=self._rules, pool_size=self._concurrency
        )
        try:
            with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
                window: deque[Future[Sample | Rejection]] = deque()
                for sample in samples:
                    window.append(pool.submit(self._resolve, fetcher, sample))
                    if len(window) >= self._concurrency * 4:
                        yield window.popleft().result()
                while window:
                    yield window.popleft().result()
        finally:
            if owns_fetcher:
                fetcher.close()

    def _resolve(self, fetcher: ImageFetcher, sample: Sample) -> Sample | Rejection:
        key = hashlib.sha256(sample.image_uri.encode()).hexdigest()[:32]
        try:
            path, info = fetcher.download(sample.image_uri, self._cache_dir, key)
        except ImageRejected as exc:
            return exc.rejection(sample)
        if (sample.width, sample.height) not in {(None, None), (info.width, info.height)}:
            return Rejection(
                Reason.IMAGE_SIZE_MISMATCH,
                sample.line,
                sample.data_row_id,
                f"the export says {sample.width}x{sample.height}, the image is "
                f"{info.width}x{info.height}",
            )
        return dataclasses.replace(
            sample,
            image_uri=str(path),
            width=info.width,
            height=info.height,
            mime_type=info.mime_type,
        )
