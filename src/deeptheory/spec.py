"""Run specs: everything that determines one training run, and its id on disk.

The id carries the grid coordinates (data set, family, width, N, labels, init scale, seed),
so a changed grid value adds or drops only the runs it touches. Settings shared by a whole
profile (learning rate, epochs, ...) travel as Snakemake params, which rerun what they
change.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

RUN_ID_PATTERN = re.compile(
    r"(?P<dataset>[a-z0-9-]+)/(?P<model>[a-z0-9]+)_w(?P<width>\d+)_N(?P<N>\d+)_"
    r"(?P<labels>natural|random)_i(?P<init>[0-9.]+)_s(?P<seed>\d+)$")


@dataclass(frozen=True)
class RunSpec:
    dataset: str            # the data set actually trained on (after any offline substitution)
    model: str              # family in deeptheory.models
    width: int              # channels of every hidden layer (the family sets how)
    N: int                  # training-set size
    labels: str = "natural"  # natural | random (training labels only; test labels never)
    label_seed: int = 0     # seed of the random labels, fixed across N, widths and seeds
    seed: int = 0           # init, subset and data order
    init_scale: float = 1.0
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 128
    max_epochs: int = 100
    image_budget: int | None = None  # caps epochs at ceil(budget / N); None: no cap
    stop_at_zero: bool = True        # stop once the training error is exactly 0
    n_test: int | None = None        # evaluate on the first n_test test images; None: all
    eval_every: int = 5               # full train/test evaluation period, in epochs

    @property
    def run_id(self) -> str:
        return (f"{self.dataset}/{self.model}_w{self.width}_N{self.N}_{self.labels}"
                f"_i{format_init(self.init_scale)}_s{self.seed}")

    @property
    def epoch_cap(self) -> int:
        if self.image_budget is None:
            return self.max_epochs
        return max(1, min(self.max_epochs, -(-self.image_budget // self.N)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def format_init(scale: float) -> str:
    return f"{float(scale):g}"


def parse_run_id(run_id: str) -> dict:
    m = RUN_ID_PATTERN.match(run_id)
    if not m:
        raise ValueError(f"not a run id: {run_id!r}")
    d = m.groupdict()
    return {"dataset": d["dataset"], "model": d["model"], "width": int(d["width"]), "N": int(d["N"]),
            "labels": d["labels"], "init_scale": float(d["init"]), "seed": int(d["seed"])}
