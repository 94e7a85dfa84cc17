"""The packed path trains many runs in one pass with the single-run path's semantics."""

import numpy as np
import pytest
import torch

from deeptheory.engine import train_run
from deeptheory.packed import train_packed, train_runs
from deeptheory import paths
from deeptheory.paths import pack_key
from deeptheory.spec import RunSpec

from conftest import train_settings


def spec(**kw):
    base = dict(dataset="tiny", model="allconv5", width=4, N=64, eval_every=1, stop_at_zero=False,
                **train_settings(max_epochs=5, batch_size=16))
    return RunSpec(**{**base, **kw})


# Runs that differ in everything a pack allows: N (so epochs of different length, and a
# partial last batch), labels, seeds, init scale, learning rate, momentum.
MIXED = [spec(),
         spec(N=50, labels="random", label_seed=3, seed=1, init_scale=2.0, lr=0.05, max_epochs=7),
         spec(N=40, seed=2, momentum=0.5, max_epochs=6)]


def test_packed_matches_single_run_losses_over_the_first_20_steps(tiny):
    single = [train_run(s, tiny) for s in MIXED]
    packed = train_packed(MIXED, tiny)
    for a, b in zip(single, packed):
        la = np.array([r["train_loss"] for r in a.rows])
        lb = np.array([r["train_loss"] for r in b.rows])
        assert len(la) == len(lb) and a.rows[-1]["epoch"] == b.rows[-1]["epoch"]
        np.testing.assert_allclose(lb, la, rtol=1e-4)  # 5 to 7 epochs of 3 to 4 steps: >= 20 steps
        for k in a.state_dict:
            torch.testing.assert_close(b.state_dict[k], a.state_dict[k], rtol=1e-4, atol=1e-5)
        assert [r["test_err"] for r in a.rows] == pytest.approx([r["test_err"] for r in b.rows], abs=0.02)


def test_a_finished_run_leaves_the_pack_without_changing_the_others(tiny):
    quick = spec(N=30, lr=0.05, max_epochs=200, stop_at_zero=True, eval_every=50)
    alone = train_run(MIXED[0], tiny)
    packed = train_packed([quick, MIXED[0]], tiny)
    assert packed[0].rows[-1]["interpolated"] and packed[0].rows[-1]["epoch"] < 200
    assert packed[0].rows[-1]["epoch"] == train_run(quick, tiny).rows[-1]["epoch"]
    np.testing.assert_allclose([r["train_loss"] for r in packed[1].rows], [r["train_loss"] for r in alone.rows],
                               rtol=1e-4)


class Killed(Exception):
    pass


def test_a_killed_pack_resumes_from_its_checkpoints(tiny, tmp_path):
    straight = train_packed(MIXED, tiny)
    steps = {"n": 0}

    def kill(params, members):
        steps["n"] += 1
        if steps["n"] == 9:
            raise Killed

    with pytest.raises(Killed):
        train_packed(MIXED, tiny, results_root=tmp_path, on_step=kill)
    resumed = train_packed(MIXED, tiny, results_root=tmp_path)
    assert all(r.resumed_from_epoch >= 1 for r in resumed)
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=1e-5)


def test_train_runs_packs_what_shares_an_architecture(tiny):
    specs = MIXED + [spec(width=3)]
    assert len({pack_key(s) for s in specs}) == 2
    results = train_runs(specs, tiny)
    assert [r.spec for r in results] == specs
    with pytest.raises(ValueError, match="one architecture"):
        train_packed(specs, tiny)


def test_a_run_resumes_across_the_single_and_the_packed_path(tiny, tmp_path):
    """Both paths checkpoint a run at paths.checkpoint(run id): either resumes the other's."""
    straight = train_run(MIXED[0], tiny)

    def kill_after_two(epoch):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_run(MIXED[0], tiny, checkpoint=paths.checkpoint(MIXED[0].run_id, tmp_path), on_epoch_end=kill_after_two)
    resumed = train_packed([MIXED[0], MIXED[2]], tiny, results_root=tmp_path)[0]
    assert resumed.resumed_from_epoch == 2
    np.testing.assert_allclose([r["train_loss"] for r in resumed.rows], [r["train_loss"] for r in straight.rows],
                               rtol=1e-4)

    steps = {"n": 0}

    def kill(params, members):
        steps["n"] += 1
        if steps["n"] == 9:
            raise Killed

    other = tmp_path / "other"
    with pytest.raises(Killed):
        train_packed(MIXED, tiny, results_root=other, on_step=kill)
    single = train_run(MIXED[1], tiny, checkpoint=paths.checkpoint(MIXED[1].run_id, other))
    assert single.resumed_from_epoch >= 1
    np.testing.assert_allclose([r["train_loss"] for r in single.rows],
                               [r["train_loss"] for r in train_run(MIXED[1], tiny).rows], rtol=1e-4)
