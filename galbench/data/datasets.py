"""PyTorch access to splits, in the torchvision style:
``GalaxyDataset(task, split, root=None, transform=None, target_transform=None, build=False)``.

Images are read from the split's memory-mapped shards. ``__getitems__`` serves a whole DataLoader
batch with one vectorised read per shard, which is what makes the loader fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from galbench.data.split import Split, load_split
from galbench.tasks import TaskSpec


class GalaxyDataset(Dataset):
    """Images ``[C, H, W]`` float32 (task image units) and targets ``[P]`` float32.

    Parameters
    ----------
    task, split:
        e.g. ``"morphometry@1"``, ``"train"``.
    root:
        Data home (default ``$GALBENCH_HOME`` or the user cache dir).
    n:
        Only the first ``n`` objects.
    transform, target_transform:
        Callables applied to each image tensor / target tensor.
    build:
        Build the split if it is not on disk yet.
    """

    def __init__(
        self,
        task: str | TaskSpec,
        split: str,
        *,
        root: str | os.PathLike[str] | None = None,
        n: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        target_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        build: bool = False,
        verify: bool = True,
    ) -> None:
        self.split: Split = load_split(task, split, n, home=root, build=build, verify=verify)
        self.task = self.split.task
        self.transform = transform
        self.target_transform = target_transform
        # Targets are small; keep them in memory as one float32 array.
        self.targets = torch.from_numpy(self.split.targets().astype(np.float32))

    def __len__(self) -> int:
        return self.split.n

    def _sample(self, image: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        target = self.targets[index]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = np.array(self.split.images[int(index)])  # a writable copy, not the memory map
        return self._sample(torch.from_numpy(image), int(index))

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batch = torch.from_numpy(self.split.images.take(np.asarray(indices)))  # a fresh array
        if self.transform is None and self.target_transform is None:
            targets = self.targets[torch.as_tensor(indices)]
            return list(zip(batch.unbind(0), targets.unbind(0)))
        return [self._sample(batch[k], int(i)) for k, i in enumerate(indices)]

    def __repr__(self) -> str:
        return f"GalaxyDataset({self.task.id}, {self.split.name}, n={len(self)})"
