"""Loader throughput: from a built split into torch batches."""

from __future__ import annotations

import numpy as np
import pytest

from galbench.data.build import build_split
from galbench.data.split import open_split

N = 5000
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def split_root(bench_home):
    return build_split("morphometry@1", "test", N, home=bench_home, workers=2, progress=False)


def test_dataloader_shuffled_epoch(benchmark, split_root):
    from torch.utils.data import DataLoader

    from galbench.data.datasets import GalaxyDataset

    dataset = GalaxyDataset("morphometry@1", "test", root=split_root.parent.parent, n=N, verify=False)
    loader = DataLoader(dataset, batch_size=256, shuffle=True, generator=torch.Generator().manual_seed(0))

    def epoch() -> int:
        count = 0
        for images, targets in loader:
            count += len(images)
        return count

    epoch()  # page cache warm: measure the loader, not the disk
    benchmark.group = "loader"
    count = benchmark.pedantic(epoch, rounds=5, iterations=1)
    assert count == N
    benchmark.extra_info["stamps_per_second"] = N / benchmark.stats.stats.min


def test_sharded_memmap_sequential_batches(benchmark, split_root):
    images = open_split(split_root, verify=False).images

    def epoch() -> int:
        return sum(len(torch.from_numpy(batch)) for _, batch in images.iter_batches(256))

    epoch()
    benchmark.group = "loader"
    assert benchmark.pedantic(epoch, rounds=5, iterations=1) == N
    benchmark.extra_info["stamps_per_second"] = N / benchmark.stats.stats.min


def test_random_gather(benchmark, split_root):
    images = open_split(split_root, verify=False).images
    index = np.random.default_rng(0).permutation(N)

    def gather() -> int:
        return sum(len(images.take(index[s : s + 256])) for s in range(0, N, 256))

    gather()
    benchmark.group = "loader"
    assert benchmark.pedantic(gather, rounds=5, iterations=1) == N
    benchmark.extra_info["stamps_per_second"] = N / benchmark.stats.stats.min
