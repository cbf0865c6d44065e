"""``MixedDataset``: several data sets as one, each drawn with a given share of every epoch.

The paper trains on Human3.6M / 3DPW "with additional data from MPI-INF-3DHP, UP-3D and COCO"
(§4.2), as VirtualMarker does: its training script passes the list of sets
(``train_list: ['Human36M', 'HP3D', 'Up_3D', 'MSCOCO']`` in
``configs/simple3dmesh_train/baseline_h36m.yml``) to its ``MultipleDatasets``
(``lib/dataset/multiple_datasets.py``), a plain concatenation read by a shuffling loader: every
item of every set once per epoch, so each set's share is its size. That is :data:`PAPER_RATIOS`
(``ratios=None``) here; ``ratios="equal"`` gives every set the same share (the I2L-MeshNet /
Pose2Mesh ``make_same_len`` mix: an epoch of the largest set's length times the number of sets),
and any shares can be given.

The draw is a pure function of (seed, epoch, index): deterministic, the same in every worker and on
every process, so it works with ``DistributedSampler`` and a resumed run sees the same epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from kinediff.core.checks import check_int, check_number

__all__ = ["PAPER_RATIOS", "MixedDataset"]

#: VirtualMarker's (and so the paper's) mix: each set's share its size, every item once an epoch.
PAPER_RATIOS = None


class MixedDataset(Dataset):
    """Samples of several data sets in the given ratios, deterministic per epoch.

    Args:
        datasets: the data sets (each yields the common sample format).
        ratios: each set's share of an epoch (normalised to sum to 1); None: proportional to the
            sets' sizes (:data:`PAPER_RATIOS`, VirtualMarker's concatenation); "equal": the same
            share for every set.
        length: samples per epoch; None: the sum of the sets' lengths ("equal": the largest set's
            length x the number of sets).
        seed: the draws' seed; epoch e, item i is a pure function of (seed, e, i).

    Within an epoch each set's share is drawn without repetition while it lasts (a set smaller
    than its share is cycled through whole permutations; an :class:`~kinediff.data.Augmented` set
    augments each repeat differently), and the sets' items are interleaved in a random order.
    Samples keep only the keys every set gives (so batches collate) plus ``dataset``: the index of
    the set the sample came from. Call :meth:`set_epoch` (the Trainer does) for a new draw each
    epoch.

    Example:
        >>> import torch
        >>> from kinediff.data import MixedDataset
        >>> a = [{"x": torch.tensor(0)}] * 4
        >>> b = [{"x": torch.tensor(1)}] * 2
        >>> mixed = MixedDataset([a, b], ratios=[3, 1], length=8, seed=0)
        >>> sorted(int(mixed[i]["dataset"]) for i in range(8))
        [0, 0, 0, 0, 0, 0, 1, 1]
    """

    def __init__(self, datasets: Sequence[Any], ratios: Sequence[float] | str | None = PAPER_RATIOS,
                 length: int | None = None, seed: int = 0) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("MixedDataset needs at least one data set")
        sizes = [len(d) for d in self.datasets]
        empty = [i for i, n in enumerate(sizes) if n == 0]
        if empty:
            raise ValueError(f"MixedDataset: data set(s) {empty} are empty")
        default_length = sum(sizes)
        if ratios is None:
            ratios = [float(n) for n in sizes]
        elif isinstance(ratios, str):
            if ratios != "equal":
                raise ValueError(f"MixedDataset: ratios must be None, 'equal' or one share per set, "
                                 f"got {ratios!r}")
            ratios = [1.0] * len(self.datasets)
            default_length = max(sizes) * len(sizes)
        ratios = [check_number(r, f"MixedDataset: ratios[{i}]", 0.0) for i, r in enumerate(ratios)]
        if len(ratios) != len(self.datasets):
            raise ValueError(f"MixedDataset: {len(ratios)} ratios for {len(self.datasets)} data sets")
        if sum(ratios) <= 0:
            raise ValueError(f"MixedDataset: ratios must have a positive sum, got {ratios}")
        self.ratios = [r / sum(ratios) for r in ratios]
        self.length = check_int(default_length if length is None else length, "MixedDataset: length")
        self.seed, self.epoch = check_int(seed, "MixedDataset: seed", 0), 0
        self._plan: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._keys: set[str] | None = None

    def counts(self) -> list[int]:
        """How many items of an epoch each set gives (largest remainders: they sum to ``length``)."""
        exact = [r * self.length for r in self.ratios]
        counts = [int(e) for e in exact]
        order = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
        for i in order[: self.length - sum(counts)]:
            counts[i] += 1
        return counts

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s items (and pass the epoch on to sets that take one)."""
        self.epoch, self._plan = int(epoch), None
        for d in self.datasets:
            if callable(getattr(d, "set_epoch", None)):
                d.set_epoch(epoch)

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        which, items, repeats = [], [], []
        for i, (d, count) in enumerate(zip(self.datasets, self.counts())):
            n = len(d)
            perms = [torch.randperm(n, generator=g) for _ in range(-(-count // n))]
            drawn = torch.cat(perms)[:count] if perms else torch.zeros(0, dtype=torch.long)
            which.append(torch.full((count,), i, dtype=torch.long))
            items.append(drawn)
            repeats.append(torch.arange(count) // n)  # the k-th pass through the set
        order = torch.randperm(self.length, generator=g)
        return torch.cat(which)[order], torch.cat(items)[order], torch.cat(repeats)[order]

    def source(self, index: int) -> tuple[int, int]:
        """(set, item) of ``index`` in the current epoch."""
        return self._source(index)[:2]

    def _source(self, index: int) -> tuple[int, int, int]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for MixedDataset of {self.length} items")
        if self._plan is None:
            self._plan = self._draw()
        which, items, repeats = self._plan
        return int(which[index]), int(items[index]), int(repeats[index])

    def __len__(self) -> int:
        return self.length

    def keys(self) -> set[str]:
        """The sample keys every set gives (read from each set's first item, once)."""
        if self._keys is None:
            keys = set(self.datasets[0][0])
            for ds in self.datasets[1:]:
                keys &= set(ds[0])
            self._keys = keys
        return self._keys

    def __getitem__(self, index: int) -> dict[str, Any]:
        d, i, repeat = self._source(index)
        data = self.datasets[d]
        draw = getattr(data, "draw", None)
        sample = dict(draw(i, repeat) if callable(draw) and repeat else data[i])
        keys = self.keys()
        out = {k: v for k, v in sample.items() if k in keys}
        out["dataset"] = torch.tensor(d)
        return out

    @property
    def body(self):
        """The first set's body (the mesh topology every set shares)."""
        return self.datasets[0].body

    def body_for(self, gender: str):
        return self.datasets[0].body_for(gender)

    def report(self) -> str:
        """The sets' reports of skipped records, one line each ('' when none skipped any)."""
        lines = [r for d in self.datasets if callable(getattr(d, "report", None)) and (r := d.report())]
        return "\n".join(lines)
