"""The packed path trains many runs in one pass with the single-run path's semantics."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from deeptheory.engine import train_run
from deeptheory.packed import PackOptions, bucket, evaluate_many, train_packed, train_runs
from deeptheory.run.evaluation import evaluate
from deeptheory.run.streams import initial_model
from deeptheory.run.subsets import subset
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


def assert_matches_single_runs(specs, packed, tiny) -> None:
    """Each packed result has its single-run training's losses and final weights."""
    for s, b in zip(specs, packed):
        a = train_run(s, tiny)
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=1e-4)
        for k in a.state_dict:
            torch.testing.assert_close(b.state_dict[k], a.state_dict[k], rtol=1e-4, atol=1e-5)


class Killed(Exception):
    pass


def kill_pack_at(step: int, tiny, root, specs=MIXED) -> None:
    """Train ``specs`` packed, checkpointing under ``root``, and kill it after ``step`` steps."""
    steps = {"n": 0}

    def kill(params, members):
        steps["n"] += 1
        if steps["n"] == step:
            raise Killed

    with pytest.raises(Killed):
        train_packed(specs, tiny, results_root=root, on_step=kill)


def test_a_killed_pack_resumes_from_its_checkpoints(tiny, tmp_path):
    straight = train_packed(MIXED, tiny)
    kill_pack_at(9, tiny, tmp_path)
    resumed = train_packed(MIXED, tiny, results_root=tmp_path)
    assert all(r.resumed_from_epoch >= 1 for r in resumed)
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=1e-5)


def test_a_pack_of_finished_runs_resumes_them_at_their_stop_without_a_step(tiny, tmp_path):
    """train_pack keeps a finished run's checkpoint until the run is linked out of the pack:
    a pack job killed after some runs finished trains them no further when rerun."""
    straight = train_packed(MIXED, tiny, results_root=tmp_path)

    def no_step(params, members):
        raise AssertionError("a finished run took a step")

    again = train_packed(MIXED, tiny, results_root=tmp_path, on_step=no_step)
    for a, b in zip(straight, again):
        assert b.resumed_from_epoch == a.rows[-1]["epoch"]
        pd.testing.assert_frame_equal(pd.DataFrame(b.rows).drop(columns="wall_s"),
                                      pd.DataFrame(a.rows).drop(columns="wall_s"))
        for k in a.state_dict:
            assert torch.equal(a.state_dict[k], b.state_dict[k])


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

    def kill_after_two(epoch, model):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_run(MIXED[0], tiny, checkpoint=paths.checkpoint(MIXED[0].run_id, tmp_path), on_epoch_end=kill_after_two)
    resumed = train_packed([MIXED[0], MIXED[2]], tiny, results_root=tmp_path)[0]
    assert resumed.resumed_from_epoch == 2
    np.testing.assert_allclose([r["train_loss"] for r in resumed.rows], [r["train_loss"] for r in straight.rows],
                               rtol=1e-4)

    other = tmp_path / "other"
    kill_pack_at(9, tiny, other)
    single = train_run(MIXED[1], tiny, checkpoint=paths.checkpoint(MIXED[1].run_id, other))
    assert single.resumed_from_epoch >= 1
    np.testing.assert_allclose([r["train_loss"] for r in single.rows],
                               [r["train_loss"] for r in train_run(MIXED[1], tiny).rows], rtol=1e-4)


# The latency path (docs/PERFORMANCE.md): static bucket sizes, padded slots, batched evaluation,
# and the compiled step.



def test_bucket_sizes_are_powers_of_two():
    assert [bucket(n) for n in (1, 2, 3, 4, 5, 16, 17, 256)] == [1, 2, 4, 4, 8, 16, 32, 256]


def _sizes_seen():
    seen = []

    def record(params, members):
        size = next(iter(params.values())).shape[0]
        if not seen or seen[-1][0] != size:
            seen.append([size, 0])
        seen[-1][1] += 1

    return seen, record


def test_the_bucketed_pack_shrinks_and_matches_the_single_run_path_step_by_step(tiny):
    """Three runs fill a bucket of 4 (one padded slot); they end after 18, 20 and 28 steps, so
    the pack steps at sizes 4, 2 and 1, and every run keeps its single-run numbers."""
    seen, record = _sizes_seen()
    packed = train_packed(MIXED, tiny, on_step=record, options=PackOptions(compile=False))
    assert seen == [[4, 18], [2, 2], [1, 8]]
    for s, b in zip(MIXED, packed):
        a = train_run(s, tiny)
        assert [r["epoch"] for r in a.rows] == [r["epoch"] for r in b.rows]
        for key in ("train_loss", "test_loss"):
            np.testing.assert_allclose([r[key] for r in b.rows], [r[key] for r in a.rows], rtol=1e-4)
        for key in ("train_err", "test_err"):
            assert [r[key] for r in b.rows] == pytest.approx([r[key] for r in a.rows], abs=1e-9)
        for k in a.state_dict:
            torch.testing.assert_close(b.state_dict[k], a.state_dict[k], rtol=1e-4, atol=1e-5)


def test_padded_slots_do_not_change_a_run(tiny):
    """The same run alone (bucket 1) and beside two others (bucket 4, one slot padded)."""
    alone = train_packed([MIXED[0]], tiny)[0]
    packed = train_packed(MIXED, tiny)[0]
    np.testing.assert_allclose([r["train_loss"] for r in packed.rows], [r["train_loss"] for r in alone.rows],
                               rtol=1e-5)
    for k in alone.state_dict:
        torch.testing.assert_close(packed.state_dict[k], alone.state_dict[k], rtol=1e-5, atol=1e-6)


def test_batched_evaluation_equals_the_per_run_one(tiny):
    runs = [spec(seed=s, N=n) for s, n in [(0, 64), (1, 40), (2, 50)]]
    nets = [initial_model(s, tiny) for s in runs]
    template = nets[0]
    stacked = {k: torch.stack([dict(n.named_parameters())[k].detach() for n in nets]) for k, _ in
               template.named_parameters()}
    test = evaluate_many(template, stacked, tiny.x_test, tiny.y_test)
    subsets = [subset(s, tiny) for s in runs]
    idx = torch.zeros(3, 64, dtype=torch.long)
    labels = torch.zeros_like(idx)
    for r, (i, y) in enumerate(subsets):
        idx[r, : len(i)], labels[r, : len(y)] = i, y
    train = evaluate_many(template, stacked, tiny.x_train, labels, idx, [s.N for s in runs])
    for net, (i, y), t, tr in zip(nets, subsets, test, train):
        assert t == pytest.approx(evaluate(net, tiny.x_test, tiny.y_test), rel=1e-5)
        assert tr == pytest.approx(evaluate(net, tiny.x_train[i], y), rel=1e-5)


def test_bf16_autocast_trains_close_to_fp32(tiny):
    """The CUDA default, exercised on the CPU: fp32 weights and evaluations, bf16 forward and
    backward; the losses stay near the fp32 ones."""
    fp32 = train_packed(MIXED[:2], tiny, options=PackOptions(amp=False))
    bf16 = train_packed(MIXED[:2], tiny, options=PackOptions(amp=True))
    for a, b in zip(fp32, bf16):
        assert all(v.dtype == torch.float32 for v in b.state_dict.values())
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=0.1)


def test_the_compiled_step_matches_the_single_run_path(tiny):
    """torch.compile on the CPU (about 30 s of warm-up): two runs of 20 steps each."""
    pair = [MIXED[0], spec(seed=5, lr=0.05, labels="random", label_seed=1)]
    assert_matches_single_runs(pair, train_packed(pair, tiny, options=PackOptions(compile=True)), tiny)


def test_a_killed_bucketed_pack_resumes_after_it_shrank(tiny, tmp_path):
    """Killed at step 22, after the first run left and the pack went from 4 slots to 2 and 1."""
    straight = train_packed(MIXED, tiny)
    kill_pack_at(22, tiny, tmp_path)
    resumed = train_packed(MIXED, tiny, results_root=tmp_path)
    assert [r.resumed_from_epoch for r in resumed] == [5, 5, 6]
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=1e-5)


def test_a_bucket_floor_keeps_one_shape(tiny):
    seen, record = _sizes_seen()
    floored = train_packed(MIXED, tiny, on_step=record, options=PackOptions(min_bucket=4))
    assert seen == [[4, 28]]
    for a, b in zip(train_packed(MIXED, tiny), floored):
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=1e-5)


def test_a_step_that_fails_to_compile_falls_back_to_the_eager_one(tiny, monkeypatch):
    import deeptheory.packed as packed

    def broken(fn, **kw):
        def call(*args):
            raise RuntimeError("no compiler")
        return call

    monkeypatch.setattr(packed.torch, "compile", broken)
    alone = train_packed(MIXED[:2], tiny, options=PackOptions(compile=False))
    fallen = train_packed(MIXED[:2], tiny, options=PackOptions(compile=True))
    for a, b in zip(alone, fallen):
        assert [r["train_loss"] for r in a.rows] == [r["train_loss"] for r in b.rows]


def test_checkpoints_can_be_spaced_in_time(tiny, tmp_path):
    """With checkpoint_s larger than the run, only the runs that stopped (after 18 and 20
    steps) have a checkpoint when the pack is killed at step 22: they are not trained
    again, the third starts afresh, and every run ends where it would have."""
    straight = train_packed(MIXED, tiny)
    steps = {"n": 0}

    def kill(params, members):
        steps["n"] += 1
        if steps["n"] == 22:
            raise Killed

    with pytest.raises(Killed):
        train_packed(MIXED, tiny, results_root=tmp_path, on_step=kill, options=PackOptions(checkpoint_s=1e9))
    assert [paths.checkpoint(s.run_id, tmp_path).exists() for s in MIXED] == [True, False, True]
    resumed = train_packed(MIXED, tiny, results_root=tmp_path)
    assert [r.resumed_from_epoch for r in resumed] == [5, 0, 6]
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=1e-5)


def test_sgdl_runs_pack_with_plain_ones_and_keep_their_single_run_numbers(tiny):
    """SGDL (memo073 eq. 5) adds each run's own noise after its update: packed beside plain
    SGD runs, every run matches its single-run training, and the noise changes the run."""
    noisy = [spec(noise=0.01), spec(N=50, seed=1, noise=0.003, max_epochs=6)]
    runs = noisy + [MIXED[2]]
    packed = train_packed(runs, tiny, options=PackOptions(compile=False))
    assert_matches_single_runs(runs, packed, tiny)
    plain = train_run(spec(), tiny)
    assert not torch.allclose(plain.state_dict["0.weight"], packed[0].state_dict["0.weight"], atol=1e-3)
    assert packed[0].spec.run_id.endswith("_e5_sgdl0.01")


def test_a_killed_sgdl_pack_resumes_with_the_same_noise(tiny, tmp_path):
    runs = [spec(noise=0.01), spec(N=40, seed=2, noise=0.01)]
    kill_pack_at(9, tiny, tmp_path, runs)
    resumed = train_packed(runs, tiny, results_root=tmp_path)
    for s, b in zip(runs, resumed):
        assert b.resumed_from_epoch > 0
        np.testing.assert_allclose([r["train_loss"] for r in b.rows],
                                   [r["train_loss"] for r in train_run(s, tiny).rows], rtol=1e-4)


def test_recipes_pack_with_plain_runs_and_keep_their_single_run_numbers(tiny, tmp_path):
    """Weight decay and a per-epoch lr schedule are per run in a pack, and a resumed run
    picks its schedule up at its epoch."""
    runs = [spec(weight_decay=0.01, lr_decay=0.8, recipe="wd"), spec(N=50, seed=1, lr_decay=0.5, recipe="decay"),
            spec(N=40, seed=2, lr=0.5, grad_clip=0.3, recipe="clip"), MIXED[2],
            spec(N=50, seed=3, lr_milestones=(0.25, 0.5), lr_milestone_factor=0.2, recipe="steps"),
            # the plateau rule (from epoch 4 + 2 on) ends this unfit run early, in both paths alike
            spec(N=60, seed=4, labels="random", stop_at_zero=True, lr_milestones=(0.25, 0.5), plateau_window=2,
                 plateau_fall=0.9, recipe="plateau")]
    packed = train_packed(runs, tiny, options=PackOptions(compile=False))
    assert_matches_single_runs(runs, packed, tiny)
    assert packed[-1].rows[-1]["plateaued"] and packed[-1].rows[-1]["epoch"] < runs[-1].max_epochs
    clipped, unclipped = packed[2], train_run(replace(runs[2], grad_clip=0.0), tiny)
    assert not torch.allclose(clipped.state_dict["0.weight"], unclipped.state_dict["0.weight"], atol=1e-3)
    kill_pack_at(9, tiny, tmp_path, runs[:3])
    for s, b in zip(runs, train_packed(runs[:3], tiny, results_root=tmp_path)):
        assert b.resumed_from_epoch > 0
        np.testing.assert_allclose([r["train_loss"] for r in b.rows],
                                   [r["train_loss"] for r in train_run(s, tiny).rows], rtol=1e-4)


def test_a_run_continues_its_twin_inside_the_pack_with_the_numbers_of_the_pack_from_scratch(tiny):
    """A zero+K run waits for its zero twin in the same pack and goes on in its slot when it
    stops (run.checkpoints.fork); a zero+K run of a twin that stopped at its cap stops at once; an eK
    run goes on from an eK' twin trained before (twin_states). Each equals the same run
    trained from scratch in a pack: rows exactly but the weights' last bits (a vmap lane's
    arithmetic may depend on the other lanes: test_padded_slots_do_not_change_a_run)."""
    fits = spec(N=30, lr=0.05, max_epochs=200, stop_at_zero=True, eval_every=50)
    capped = spec(N=50, seed=1, max_epochs=3, stop_at_zero=True)
    pack = [replace(fits, past_zero=4), fits, replace(capped, past_zero=4), capped]
    steps = {"n": 0}
    together = train_packed(pack, tiny, on_step=lambda p, m: steps.__setitem__("n", steps["n"] + 1))
    alone = {s.run_id: r for s in pack for r in train_packed([s, MIXED[0]], tiny)[:1]}
    fork = together[1].rows[-1]["epoch"]
    assert together[0].continued_from == {"run_id": fits.run_id, "epoch": fork}
    assert together[2].continued_from["epoch"] == 3 and together[2].rows[-1]["epoch"] == 3
    for r in together:
        a = alone[r.spec.run_id]
        pd.testing.assert_frame_equal(pd.DataFrame(r.rows).drop(columns="wall_s"),
                                      pd.DataFrame(a.rows).drop(columns="wall_s"), rtol=1e-4)
        for k in a.state_dict:
            torch.testing.assert_close(r.state_dict[k], a.state_dict[k], rtol=1e-4, atol=1e-5)
    # the continuation trained only its 4 epochs past zero: no step of its own before the fork
    per_epoch = -(-30 // 16)
    assert steps["n"] == (fork + 4) * per_epoch
    short, long = spec(max_epochs=2), spec(max_epochs=4)
    twin = train_packed([short], tiny)[0]
    continued = train_packed([long], tiny, twin_states={long.run_id: twin.final_state})[0]
    assert continued.continued_from["epoch"] == 2
    np.testing.assert_allclose([r["train_loss"] for r in continued.rows],
                               [r["train_loss"] for r in train_packed([long], tiny)[0].rows], rtol=1e-5)
