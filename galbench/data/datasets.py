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
    """Images ``[C, H, W]`` float32 (task image units) and targets ``[P]`` float32, or, for tasks
    whose truth is an image (clumps@1, deblending@1), that target array per object as float32
    (``[1, H, W]`` clump mask, ``[S, C, H, W]`` isolated sources).

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
    target_array:
        Serve this target array of the split as the target (default: the one the task's scorer
        compares predictions with, for tasks without catalog targets; e.g. ``"clumps"`` gives
        clump@1's padded clump list instead of its mask).
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
        target_array: str | None = None,
    ) -> None:
        self.split: Split = load_split(task, split, n, home=root, build=build, verify=verify)
        self.task = self.split.task
        self.transform = transform
        self.target_transform = target_transform
        if target_array is None and not self.task.target_names and self.split.target_array_names:
            from galbench.scoring import get_scorer

            target_array = get_scorer(self.task.type).truth_arrays[0]
        self.target_array = target_array
        if target_array is not None:
            # Image targets stay memory-mapped, read with the images.
            self._target_images = self.split.target_array(target_array)
            self.targets = None
        else:
            # Catalog targets are small; keep them in memory as one float32 array.
            self.targets = torch.from_numpy(self.split.targets().astype(np.float32))

    def _targets(self, indices: np.ndarray) -> torch.Tensor:
        if self.targets is not None:
            return self.targets[torch.as_tensor(indices)]
        return torch.from_numpy(self._target_images.take(indices).astype(np.float32))

    def __len__(self) -> int:
        return self.split.n

    def _sample(
        self, image: torch.Tensor, index: int, target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        target = self._targets(np.array([index]))[0] if target is None else target
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = np.array(self.split.images[int(index)])  # a writable copy, not the memory map
        return self._sample(torch.from_numpy(image), int(index))

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        indices = np.asarray(indices, dtype=np.int64)
        batch = torch.from_numpy(self.split.images.take(indices))  # a fresh array
        targets = self._targets(indices)
        if self.transform is None and self.target_transform is None:
            return list(zip(batch.unbind(0), targets.unbind(0)))
        return [self._sample(batch[k], int(i), targets[k]) for k, i in enumerate(indices)]

    def __repr__(self) -> str:
        return f"GalaxyDataset({self.task.id}, {self.split.name}, n={len(self)})"
