"""Run specs: everything that determines one training run, and its id on disk.

The id carries the grid coordinates (data set, family, width, N, labels, init scale, seed),
the stopping rule and the run options that differ from plain SGD on the seed's own subset
(``opts``: SGDL noise, a subset drawn from another seed), so a changed grid value adds or
drops only the runs it touches. Settings shared by a whole
profile (learning rate, epochs, ...) are fields of the spec too, but not of the id: they
travel to the jobs as Snakemake params, which rerun what they change.

``RUN_ID`` is the one place the id's format is written: the id of a spec, the parser and
the Snakemake wildcard pattern are all derived from it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

# The stopping rule's one grammar (its meaning: STOP below): the run id's field, the parser
# and the config schema's pattern for key ``stop`` (tests/test_engine.py checks the schema).
STOP_PATTERN = r"zero|zero\+[0-9]+|e[0-9]+"

# The run id's format, and the pattern of each of its fields.
RUN_ID = "{dataset}/{model}_w{width}_N{N}_{labels}_i{init}_s{seed}_{stop}{opts}"
RUN_ID_FIELDS = {"dataset": "[a-z0-9-]+", "model": "[a-z0-9]+", "width": "[0-9]+", "N": "[0-9]+",
                 "labels": "natural|random", "init": "[0-9.e+-]+", "seed": "[0-9]+",
                 "stop": STOP_PATTERN, "opts": r"(?:_sgdl[0-9.e+-]+)?(?:_d[0-9]+)?(?:_r[a-z0-9]+)?"}

# Run options, each written into the id only when it is not the plain default, so the ids
# of plain SGD runs read as they always did:
#   _sgdl<s>   SGDL (memo073 eq. 5): after every SGD update, isotropic Gaussian noise of
#              standard deviation s per weight (constant power: the same s at every step)
#   _d<k>      the training subset is the one of seed k, not of the run's own seed (three
#              minimizers of one training set from three inits and orders: memo073 eq. 15)
#   _r<name>   training settings from the profile's recipe <name> (config key
#              profiles.<profile>.recipes), not its default `train`: the id names the recipe,
#              its values travel as spec fields like the default's

# Model families whose output on an image depends on the rest of its batch (batch
# normalization with batch statistics, in training and in evaluation: the packed engine
# carries no running statistics). Their runs pack only with runs of the same N, train on
# N a multiple of the batch size (no padded partial batch), and evaluate in chunks of
# run.evaluation.EVAL_CHUNK on both paths, so a packed run sees the batches its single run sees.
# tests/test_models.py checks this list against the built models.
BATCH_STATISTICS = ("hcnnbn", "inception", "wrn", "resnet")

# The stopping rule, as a target's config writes it (key ``stop``) and as the id carries it:
#   zero     train until the training error is exactly 0, or the epoch cap
#   zero+K   the same, then K more epochs (memo100: the margin keeps growing after the fit)
#   eK       exactly K epochs, whatever the training error (a budget the memo states)
STOP = re.compile(f"(?:{STOP_PATTERN})$")


def parse_stop(stop: str, max_epochs: int) -> dict:
    """The spec fields a stopping rule sets, given the profile's epoch cap."""
    stop = str(stop)
    if not STOP.match(stop):
        raise ValueError(f"stop must read 'zero', 'zero+K' or 'eK' (K epochs), not {stop!r}")
    if stop.startswith("e"):
        return {"stop_at_zero": False, "past_zero": 0, "max_epochs": int(stop[1:])}
    return {"stop_at_zero": True, "past_zero": int(stop.partition("+")[2] or 0), "max_epochs": int(max_epochs)}
RUN_ID_REGEX = RUN_ID.format(**{k: f"(?:{p})" for k, p in RUN_ID_FIELDS.items()})
_PARSER = re.compile(RUN_ID.format(**{k: f"(?P<{k}>{p})" for k, p in RUN_ID_FIELDS.items()}) + "$")


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
    # Training settings: no defaults that could silently differ from the config's; every
    # spec is made by deeptheory.grid from the profile, or spelled out in full by a test.
    lr: float = dataclasses.field(kw_only=True)
    momentum: float = dataclasses.field(kw_only=True)
    batch_size: int = dataclasses.field(kw_only=True)
    max_epochs: int = dataclasses.field(kw_only=True)
    stop_at_zero: bool = True        # stop once the training error is exactly 0 ...
    past_zero: int = 0               # ... and this many epochs after it first is
    n_test: int | None = None        # evaluate on the first n_test test images; None: all
    eval_every: int = 5               # full train/test evaluation period, in epochs
    noise: float = 0.0               # SGDL: sd of the Gaussian added to every weight after each update
    subset_seed: int | None = None   # the seed whose subset the run trains on; None: its own seed
    recipe: str | None = None        # the profile's named training settings these come from; None: its `train`
    lr_decay: float = 1.0            # the learning rate of epoch e (from 0) is lr x lr_decay^e
    weight_decay: float = 0.0        # torch SGD's: weight_decay x weight added to every gradient
    grad_clip: float = 0.0           # > 0: rescale a minibatch gradient whose norm (all weights) exceeds this to it
    # Step schedule: from each milestone (a fraction of the epoch cap) on, the lr is multiplied by
    # lr_milestone_factor once more. Tied to the cap, so every run of a sweep decays at the same epochs.
    lr_milestones: tuple[float, ...] = ()
    lr_milestone_factor: float = 0.1
    # Plateau rule (stop rule zero only): past the last milestone, a run not yet fit whose training
    # loss fell by less than plateau_fall (relative) over its last plateau_window epochs stops there.
    plateau_window: int = 0          # 0: off
    plateau_fall: float = 0.0

    @property
    def run_id(self) -> str:
        return RUN_ID.format(dataset=self.dataset, model=self.model, width=self.width, N=self.N,
                             labels=self.labels, init=format_init(self.init_scale), seed=self.seed, stop=self.stop,
                             opts=self.opts)

    @property
    def opts(self) -> str:
        return ((f"_sgdl{format_init(self.noise)}" if self.noise else "")
                + (f"_d{self.subset_seed}" if self.subset_seed is not None else "")
                + (f"_r{self.recipe}" if self.recipe is not None else ""))

    def __post_init__(self):
        # a spec read back from JSON (provenance, metrics) brings a list; the spec stays hashable
        object.__setattr__(self, "lr_milestones", tuple(float(m) for m in self.lr_milestones))

    @property
    def milestone_epochs(self) -> tuple[int, ...]:
        return tuple(round(m * self.max_epochs) for m in self.lr_milestones)

    def lr_at(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (0 is the first)."""
        passed = sum(epoch >= m for m in self.milestone_epochs)
        return self.lr * self.lr_decay ** epoch * self.lr_milestone_factor ** passed

    @property
    def image_epochs(self) -> int:
        """Training images seen by the epoch cap, N x max_epochs: a run's size before it trains
        (one that fits stops earlier), by which small runs are grouped (grid.run_groups) and
        large ones started first (the workflow's job priorities)."""
        return self.N * self.max_epochs

    @property
    def data_seed(self) -> int:
        """The seed of the training subset (and nothing else)."""
        return self.seed if self.subset_seed is None else self.subset_seed

    @property
    def stop(self) -> str:
        if not self.stop_at_zero:
            return f"e{self.max_epochs}"
        return "zero" if self.past_zero == 0 else f"zero+{self.past_zero}"

    def to_dict(self) -> dict:
        """Plain JSON values (a list, not a tuple), so a dict read back from provenance compares equal."""
        return {**dataclasses.asdict(self), "lr_milestones": list(self.lr_milestones)}

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# The fields a stop rule sets (parse_stop): two runs equal in every other field train the very
# same epochs until the shorter one stops, if their schedules agree up to there.
STOP_FIELDS = ("stop_at_zero", "past_zero", "max_epochs")


def shares_prefix(short: RunSpec, long: RunSpec) -> bool:
    """Whether ``long`` trains the epochs of ``short`` first and then more (``zero`` or
    ``zero+K'`` before ``zero+K``, K' < K, at one cap; ``eK'`` before ``eK``): every field but
    the stop rule equal, and the learning rate of every epoch before ``short``'s cap the same.
    The step schedule is tied to the cap (RunSpec.lr_milestones), so two budgets eK' and eK
    share their epochs only where their milestones fall at the same epochs (or there are none);
    the plateau rule reads the milestones too, but stop rule zero has one cap for both runs."""
    if short.stop_at_zero != long.stop_at_zero or short == long:
        return False
    rest = lambda s: {k: v for k, v in s.to_dict().items() if k not in STOP_FIELDS}  # noqa: E731
    if rest(short) != rest(long):
        return False
    if short.stop_at_zero:
        return short.max_epochs == long.max_epochs and short.past_zero < long.past_zero
    return (short.max_epochs < long.max_epochs
            and all(short.lr_at(e) == long.lr_at(e) for e in range(short.max_epochs)))


def twins(specs) -> dict:
    """Each run's *twin*: the longest other run of ``specs`` whose epochs it trains first
    (shares_prefix), which it continues from rather than from scratch; run id -> spec. A run
    has at most one twin and is the twin of at most one run (zero -> zero+50 -> zero+100; two
    budgets whose schedules part after a shorter common one: the shorter of the two continues
    it, the other trains from scratch), so a pack hands a finished twin's slot to its one
    continuation."""
    groups: dict = {}
    for s in specs:
        groups.setdefault(tuple(sorted((k, str(v)) for k, v in s.to_dict().items() if k not in STOP_FIELDS)),
                          []).append(s)
    found, taken = {}, set()
    length = lambda t: (t.past_zero, t.max_epochs)  # noqa: E731
    for group in groups.values():
        for s in sorted(group, key=length):
            shorter = [t for t in group if shares_prefix(t, s)]
            if shorter:
                twin = max(shorter, key=length)
                if twin.run_id not in taken:
                    found[s.run_id] = twin
                    taken.add(twin.run_id)
    return found


def format_init(scale: float) -> str:
    return f"{float(scale):g}"


def parse_run_id(run_id: str) -> dict:
    m = _PARSER.match(run_id)
    if not m:
        raise ValueError(f"not a run id: {run_id!r} (format {RUN_ID})")
    d = m.groupdict()
    opts = re.match(r"(?:_sgdl(?P<noise>[0-9.e+-]+))?(?:_d(?P<subset>[0-9]+))?(?:_r(?P<recipe>[a-z0-9]+))?$",
                    d["opts"])
    return {"dataset": d["dataset"], "model": d["model"], "width": int(d["width"]), "N": int(d["N"]),
            "labels": d["labels"], "init_scale": float(d["init"]), "seed": int(d["seed"]), "stop": d["stop"],
            "noise": float(opts["noise"] or 0.0),
            "subset_seed": int(opts["subset"]) if opts["subset"] is not None else None, "recipe": opts["recipe"]}
