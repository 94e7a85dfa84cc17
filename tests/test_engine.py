from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from deeptheory.engine import train_run
from deeptheory.run import checkpoints
from deeptheory.run.subsets import training_subset
from deeptheory.spec import RunSpec, parse_run_id, parse_stop, shares_prefix, twins

from conftest import train_settings


def spec(**kw):
    base = dict(dataset="tiny", model="allconv5", width=8, N=200, eval_every=1, stop_at_zero=False,
                **train_settings())
    return RunSpec(**{**base, **kw})


def test_loss_falls_on_a_learnable_task(tiny):
    rows = train_run(spec(), tiny).rows
    losses = [r["train_loss"] for r in rows]
    assert losses[-1] < 0.5 * losses[0]
    assert rows[-1]["test_err"] < 0.5  # chance is 0.9


def test_fixed_seeds_give_identical_runs(tiny):
    a, b = train_run(spec(max_epochs=2), tiny), train_run(spec(max_epochs=2), tiny)
    assert [r["train_loss"] for r in a.rows] == [r["train_loss"] for r in b.rows]
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k])
    c = train_run(spec(max_epochs=2, seed=1), tiny)
    assert c.rows[-1]["train_loss"] != a.rows[-1]["train_loss"]


def test_random_labels_are_reproducible_per_seed_and_spare_the_test_set(tiny):
    _, y_nat = training_subset(spec(), tiny)
    _, y_a = training_subset(spec(labels="random", label_seed=3), tiny)
    _, y_b = training_subset(spec(labels="random", label_seed=3), tiny)
    _, y_c = training_subset(spec(labels="random", label_seed=4), tiny)
    assert torch.equal(y_a, y_b)
    assert not torch.equal(y_a, y_c)
    assert (y_a == y_nat).float().mean() < 0.3  # about 1/10 agree by chance
    # Nested subsets: the labels of the first 100 of N=200 are those of N=100.
    _, y_small = training_subset(spec(labels="random", label_seed=3, N=100), tiny)
    assert torch.equal(y_small, y_a[:100])
    y_test = tiny.y_test.clone()
    train_run(spec(labels="random", max_epochs=1), tiny)
    assert torch.equal(tiny.y_test, y_test)


def test_stops_at_zero_training_error(tiny):
    result = train_run(spec(N=60, max_epochs=200, stop_at_zero=True, eval_every=50), tiny)
    final = result.rows[-1]
    assert final["final"] and final["interpolated"] and final["train_err"] == 0.0
    assert final["epoch"] < 200


def test_training_past_zero_adds_exactly_the_epochs_asked_for(tiny):
    at_zero = train_run(spec(N=60, max_epochs=200, stop_at_zero=True, eval_every=50), tiny).rows[-1]
    past = train_run(spec(N=60, max_epochs=200, stop_at_zero=True, past_zero=7, eval_every=50), tiny).rows
    assert past[-1]["first_zero_epoch"] == at_zero["epoch"]
    assert past[-1]["epoch"] == at_zero["epoch"] + 7 and past[-1]["final"]
    assert past[-1]["train_loss"] < at_zero["train_loss"]  # the loss keeps falling after the fit


def test_stop_rules_and_their_ids():
    assert parse_stop("zero", 300) == {"stop_at_zero": True, "past_zero": 0, "max_epochs": 300}
    assert parse_stop("zero+50", 300) == {"stop_at_zero": True, "past_zero": 50, "max_epochs": 300}
    assert parse_stop("e30", 300) == {"stop_at_zero": False, "past_zero": 0, "max_epochs": 30}
    with pytest.raises(ValueError, match="zero"):
        parse_stop("until-bored", 300)
    for stop in ("zero", "zero+50", "e30"):
        s = spec(**parse_stop(stop, 300))
        assert s.stop == stop and s.run_id.endswith(f"_{stop}") and parse_run_id(s.run_id)["stop"] == stop


class Killed(Exception):
    pass


def test_killed_run_resumes_from_checkpoint(tiny, tmp_path):
    ckpt = tmp_path / "run.pt"
    straight = train_run(spec(max_epochs=4), tiny)

    def kill_after_two(epoch, model):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_run(spec(max_epochs=4), tiny, checkpoint=ckpt, on_epoch_end=kill_after_two)
    resumed = train_run(spec(max_epochs=4), tiny, checkpoint=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert [r["train_loss"] for r in resumed.rows] == [r["train_loss"] for r in straight.rows]
    for k in straight.state_dict:
        assert torch.equal(resumed.state_dict[k], straight.state_dict[k])


def test_checkpoints_are_spaced_in_seconds(tiny, tmp_path, monkeypatch):
    """A run saves at most once per checkpoint_s seconds: with a spacing longer than the run,
    a kill after epoch 2 leaves no checkpoint and the rerun starts afresh, with the same
    numbers. The default spacing is 10 s on the CPU, 60 s on CUDA; the environment's
    DEEPTHEORY_CHECKPOINT_S and an explicit value win, in that order."""
    ckpt = tmp_path / "run.pt"

    def kill_after_two(epoch, model):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_run(spec(max_epochs=4), tiny, checkpoint=ckpt, on_epoch_end=kill_after_two, checkpoint_s=1e9)
    assert not ckpt.exists()
    again = train_run(spec(max_epochs=4), tiny, checkpoint=ckpt, checkpoint_s=1e9)
    assert again.resumed_from_epoch == 0 and not ckpt.exists()  # a finished run leaves none: model.pt keeps it
    assert [r["train_loss"] for r in again.rows] == [r["train_loss"] for r in train_run(spec(max_epochs=4), tiny).rows]

    monkeypatch.delenv("DEEPTHEORY_CHECKPOINT_S")
    assert checkpoints.interval_s("cpu") == 10.0 and checkpoints.interval_s(torch.device("cuda", 0)) == 60.0
    monkeypatch.setenv("DEEPTHEORY_CHECKPOINT_S", "2.5")
    assert checkpoints.interval_s("cpu") == 2.5 and checkpoints.interval_s("cpu", 0.0) == 0.0


def test_checkpoint_of_other_settings_is_not_resumed(tiny, tmp_path):
    ckpt = tmp_path / "run.pt"
    train_run(spec(max_epochs=1, lr=0.01), tiny, checkpoint=ckpt)
    assert train_run(spec(max_epochs=1), tiny, checkpoint=ckpt).resumed_from_epoch == 0


def test_run_id_round_trip():
    s = spec(labels="random", init_scale=10.0, seed=2)
    assert s.run_id == "tiny/allconv5_w8_N200_random_i10_s2_e8"
    assert parse_run_id(s.run_id) == {"dataset": "tiny", "model": "allconv5", "width": 8, "N": 200,
                                      "labels": "random", "init_scale": 10.0, "seed": 2, "stop": "e8",
                                      "noise": 0.0, "subset_seed": None, "recipe": None}


def test_loss_drop_reads_the_trend_of_the_last_fifth_not_two_noisy_epochs():
    from deeptheory.run.trend import loss_drop_last_fifth

    flat_but_noisy = [1.0] * 80 + [0.1, 0.3, 0.3, 0.1] * 5   # last fifth: large swings, no trend
    falling = np.linspace(1.0, 0.5, 100)                 # a straight fall: the fit is exact
    window = falling[-20:]
    assert abs(loss_drop_last_fifth(list(flat_but_noisy))) < 0.05
    assert loss_drop_last_fifth(list(falling)) == pytest.approx((window[0] - window[-1]) / window.mean())
    assert np.isnan(loss_drop_last_fifth([1.0, 0.9]))


def test_run_options_enter_the_id_only_when_set():
    plain = spec()
    sgdl = spec(noise=0.001, subset_seed=0, seed=3)
    assert plain.run_id == "tiny/allconv5_w8_N200_natural_i1_s0_e8"
    assert sgdl.run_id == "tiny/allconv5_w8_N200_natural_i1_s3_e8_sgdl0.001_d0"
    parsed = parse_run_id(sgdl.run_id)
    assert parsed["noise"] == 0.001 and parsed["subset_seed"] == 0 and parsed["seed"] == 3
    assert parse_run_id(plain.run_id)["noise"] == 0.0 and parse_run_id(plain.run_id)["subset_seed"] is None


def test_metrics_rows_carry_every_coordinate_of_the_run_id():
    # Targets read a run's settings from its rows (t3-sgdl pairs on them, t3-archs reads the
    # recipe), never by parsing its id: each coordinate the id holds is a column, equal.
    from deeptheory.run.results import with_run_fields

    for s in (spec(), spec(noise=0.001, subset_seed=0, seed=3, stop_at_zero=True, past_zero=50, recipe="zhang")):
        row = with_run_fields([{"epoch": 1}], s, n_params=10, n_test=5, num_classes=10)[0]
        parsed = parse_run_id(s.run_id)
        assert {k: row[k] for k in parsed} == parsed


def test_a_recipe_enters_the_id_by_name_and_sets_its_schedule(tiny):
    zhang = spec(recipe="zhang", lr=0.01, lr_decay=0.95, weight_decay=5e-4, seed=1, subset_seed=0)
    assert zhang.run_id.endswith("_e8_d0_rzhang") and parse_run_id(zhang.run_id)["recipe"] == "zhang"
    assert [zhang.lr_at(e) for e in (0, 1, 2)] == pytest.approx([0.01, 0.0095, 0.009025])


def test_a_step_schedule_decays_at_fractions_of_the_cap_and_survives_json():
    """lr x factor from each milestone epoch on (round(fraction x cap)); a spec read back
    from JSON (a list) is the same spec and compares equal to its provenance."""
    import json
    s = spec(max_epochs=10, lr=0.1, lr_milestones=(0.5, 0.75), lr_milestone_factor=0.1)
    assert s.milestone_epochs == (5, 8)
    assert [s.lr_at(e) for e in (0, 4, 5, 7, 8, 9)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    back = json.loads(json.dumps(s.to_dict()))
    assert back == s.to_dict() and type(s).from_dict(back) == s and hash(type(s).from_dict(back)) == hash(s)


def test_weight_decay_and_an_lr_schedule_change_the_run_as_torch_sgd_does(tiny):
    """One epoch of full-batch steps by hand (torch SGD's weight decay, lr x decay^epoch)
    gives the engine's weights."""
    s = spec(N=32, batch_size=32, max_epochs=3, lr=0.05, lr_decay=0.5, weight_decay=0.01, momentum=0.9)
    from deeptheory.run.streams import ORDER, initial_model, stream
    from deeptheory.run.subsets import training_subset
    import torch.nn.functional as F
    model = initial_model(s, tiny)
    x, y = training_subset(s, tiny)
    order = stream(s.seed, ORDER)
    buf = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for epoch in range(3):
        perm = torch.randperm(s.N, generator=order)
        model.zero_grad()
        F.cross_entropy(model(x[perm]), y[perm]).backward()
        with torch.no_grad():
            for n, p in model.named_parameters():
                buf[n] = 0.9 * buf[n] + p.grad + 0.01 * p
                p -= 0.05 * 0.5 ** epoch * buf[n]
    result = train_run(s, tiny)
    for n, p in model.named_parameters():
        torch.testing.assert_close(result.state_dict[n], p.detach(), rtol=1e-4, atol=1e-6)


def test_subset_seed_fixes_the_subset_across_seeds(tiny):
    from deeptheory.run.subsets import subset

    a, b = spec(seed=1, subset_seed=0), spec(seed=2, subset_seed=0)
    assert torch.equal(subset(a, tiny)[0], subset(b, tiny)[0])
    assert not torch.equal(subset(spec(seed=1), tiny)[0], subset(spec(seed=2), tiny)[0])


def test_plain_gradient_descent_trains_checkpoints_and_resumes(tiny, tmp_path):
    """Momentum 0 and one batch of the whole subset (recipe batch_size: full): torch keeps no
    momentum buffer, and the checkpoint still holds one (zeros) for the packed path."""
    s = spec(N=32, batch_size=32, momentum=0.0, max_epochs=4, eval_every=1)
    straight = train_run(s, tiny)
    ckpt = tmp_path / "run.pt"

    def kill_after_two(epoch, model):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_run(s, tiny, checkpoint=ckpt, on_epoch_end=kill_after_two)
    resumed = train_run(s, tiny, checkpoint=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert [r["train_loss"] for r in resumed.rows] == [r["train_loss"] for r in straight.rows]
    assert straight.rows[-1]["train_loss"] < straight.rows[0]["train_loss"]


def test_a_run_whose_loss_overflows_stops_marked_diverged(tiny):
    """A learning rate far too large for the net: the loss goes non-finite, the run stops at
    that epoch instead of training NaN weights to its cap, and its rows say so."""
    s = spec(lr=1e6, max_epochs=50, eval_every=10)
    result = train_run(s, tiny)
    last = result.rows[-1]
    assert last["diverged"] and last["final"] and last["epoch"] < 50
    assert not any(r["diverged"] for r in train_run(spec(max_epochs=2), tiny).rows)


def test_the_plateau_rule_stops_an_unfit_run_after_the_schedule_and_says_so(tiny):
    """Random labels on 300 images the tiny net cannot fit in 40 epochs: with the step
    schedule done at epoch 20 (milestones 1/4 and 1/2 of a 40-epoch cap) and a window of 4,
    the run stops at the first epoch >= 24 whose loss fell by less than 50% over 4 epochs,
    marked plateaued, its last row final; the same run without the rule goes to the cap."""
    s = spec(labels="random", N=300, max_epochs=40, eval_every=10, stop_at_zero=True, lr_milestones=(0.25, 0.5),
             plateau_window=4, plateau_fall=0.5)
    rows = train_run(s, tiny).rows
    assert rows[-1]["final"] and rows[-1]["plateaued"] and 24 <= rows[-1]["epoch"] < 40
    assert not any(r["plateaued"] for r in rows[:-1])
    full = train_run(spec(labels="random", N=300, max_epochs=40, eval_every=10, stop_at_zero=True,
                          lr_milestones=(0.25, 0.5)), tiny).rows
    assert full[-1]["epoch"] == 40 and not full[-1]["plateaued"]
    # identical up to the stop: the rule only ends a run
    assert [r["train_loss"] for r in rows if r["epoch"] <= 20] == [r["train_loss"] for r in full if r["epoch"] <= 20]


@pytest.mark.parametrize("beta, wd", [(0.9, 0.0), (0.9, 5e-4), (0.0, 0.0), (0.0, 1e-3)])
def test_the_written_out_update_is_torch_sgd_bit_for_bit(beta, wd):
    """engine.sgd_update replaces torch.optim.SGD (whose first call imports TorchDynamo):
    the same operations in the same order, so the same bits, over steps whose learning
    rate changes as a schedule's does."""
    from deeptheory.engine import sgd_update

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    twin = [p.detach().clone().requires_grad_() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=beta, weight_decay=wd)
    momentum = [torch.zeros_like(p) for p in twin]
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    for step, lr in enumerate([0.1, 0.1, 0.1, 0.01, 0.01]):
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        out = torch.func.functional_call(net, dict(zip([n for n, _ in net.named_parameters()], twin)), (x,))
        for p in twin:
            p.grad = None
        torch.nn.functional.cross_entropy(out, y).backward()
        sgd_update(twin, momentum, lr, beta, wd)
        for a, b in zip(net.parameters(), twin):
            assert torch.equal(a, b), f"step {step}"


# Shared prefixes (run.checkpoints.fork): a run whose stop rule only adds epochs to another's goes on
# from that twin's final state, with the numbers it would have had from scratch.

def assert_same_run(a, b) -> None:
    """Every metrics column but the wall time, and every weight, bit for bit."""
    pd.testing.assert_frame_equal(pd.DataFrame(a.rows).drop(columns="wall_s"),
                                  pd.DataFrame(b.rows).drop(columns="wall_s"), check_exact=True)
    assert a.state_dict.keys() == b.state_dict.keys()
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k


def never_steps(epoch, model):
    raise AssertionError(f"a continuation with nothing to add trained epoch {epoch}")


def test_a_zero_plus_k_run_continues_its_zero_twin_with_the_numbers_from_scratch(tiny):
    twin_spec = spec(N=60, max_epochs=200, stop_at_zero=True, eval_every=50)
    long_spec = replace(twin_spec, past_zero=7)
    assert shares_prefix(twin_spec, long_spec) and twins([long_spec, twin_spec]) == {long_spec.run_id: twin_spec}
    twin = train_run(twin_spec, tiny)
    epochs = []
    continued = train_run(long_spec, tiny, twin=twin.final_state,
                          on_epoch_end=lambda epoch, model: epochs.append(epoch))
    scratch = train_run(long_spec, tiny)
    assert_same_run(continued, scratch)
    fork_epoch = twin.rows[-1]["epoch"]
    assert continued.continued_from == {"run_id": twin_spec.run_id, "epoch": fork_epoch}
    assert epochs == list(range(fork_epoch + 1, fork_epoch + 8))  # only the 7 epochs past zero were trained
    assert continued.resumed_from_epoch == fork_epoch and scratch.continued_from is None
    # the twin's row at the fork is kept, no longer final
    assert [r["final"] for r in continued.rows if r["epoch"] == fork_epoch] == [False]
    # the twin's state is read, not changed: a second continuation gives the same run
    assert_same_run(train_run(long_spec, tiny, twin=twin.final_state), scratch)


def test_a_longer_budget_continues_a_shorter_one_with_the_numbers_from_scratch(tiny):
    """e3 -> e5, evaluating every 2 epochs: the twin's final evaluation at epoch 3 is no row
    of e5's (3 is no multiple of 2), so the continuation drops it."""
    short, long = spec(max_epochs=3, eval_every=2), spec(max_epochs=5, eval_every=2)
    continued = train_run(long, tiny, twin=train_run(short, tiny).final_state)
    assert continued.continued_from["epoch"] == 3 and 3 not in [r["epoch"] for r in continued.rows]
    assert_same_run(continued, train_run(long, tiny))


def test_a_twin_that_never_reached_zero_leaves_its_continuation_nothing_to_add(tiny):
    """Stopped at its cap, or levelled off under the plateau rule: a zero+K run at the same
    cap stops there too, with the twin's numbers, without a step."""
    capped = spec(N=200, max_epochs=2, stop_at_zero=True, eval_every=5)
    plateau = spec(labels="random", N=300, max_epochs=40, eval_every=10, stop_at_zero=True, lr_milestones=(0.25, 0.5),
                   plateau_window=4, plateau_fall=0.5)
    for twin_spec in (capped, plateau):
        twin = train_run(twin_spec, tiny)
        assert twin.rows[-1]["train_err"] > 0
        continued = train_run(replace(twin_spec, past_zero=5), tiny, twin=twin.final_state, on_epoch_end=never_steps)
        assert_same_run(continued, train_run(replace(twin_spec, past_zero=5), tiny))
        assert continued.rows[-1]["final"] and continued.rows[-1]["epoch"] == twin.rows[-1]["epoch"]


def test_only_runs_whose_schedules_agree_up_to_the_fork_share_a_prefix(tiny):
    """The step schedule sits at fractions of the cap: budgets e10 and e20 with milestones at
    half of it decay at epochs 5 and 10, so e20 does not continue e10 (it trains from
    scratch); without milestones it does. Runs of other settings or stop kinds never do."""
    assert not shares_prefix(spec(max_epochs=10, lr_milestones=(0.5,)), spec(max_epochs=20, lr_milestones=(0.5,)))
    assert shares_prefix(spec(max_epochs=10), spec(max_epochs=20))
    zero = spec(stop_at_zero=True, max_epochs=20)
    assert not shares_prefix(zero, replace(zero, past_zero=5, max_epochs=30))  # another cap: another schedule
    assert not shares_prefix(spec(max_epochs=10), spec(max_epochs=20, lr=0.05))
    assert not shares_prefix(replace(zero, max_epochs=10, stop_at_zero=False), zero)
    assert not shares_prefix(replace(zero, past_zero=5), zero)
    chain = [zero, replace(zero, past_zero=5), replace(zero, past_zero=9)]
    assert twins(chain) == {chain[1].run_id: chain[0], chain[2].run_id: chain[1]}
    short, long = spec(max_epochs=2), spec(max_epochs=4, lr_milestones=(0.5,))
    with_milestones = replace(long, max_epochs=2)  # no prefix of `long`: its milestone falls at epoch 1
    assert train_run(long, tiny, twin=train_run(with_milestones, tiny).final_state).continued_from is None
    assert not shares_prefix(short, long)


def test_the_stop_rule_has_one_grammar_the_schema_writes_too():
    """spec.STOP_PATTERN is the id's field and the parser's grammar; the config schema's
    pattern for key ``stop`` must be the very same (anchored), so all three agree."""
    import yaml

    from deeptheory.schema import SCHEMA
    from deeptheory.spec import STOP_PATTERN

    def patterns(node):
        if isinstance(node, dict):
            if "stop" in node and isinstance(node["stop"], dict) and "pattern" in node["stop"]:
                yield node["stop"]["pattern"]
            for v in node.values():
                yield from patterns(v)
        elif isinstance(node, list):
            for v in node:
                yield from patterns(v)

    found = set(patterns(yaml.safe_load(SCHEMA.read_text())))
    assert found == {f"^({STOP_PATTERN})$"}
    for good, fields in [("zero", (True, 0)), ("zero+50", (True, 50)), ("e30", (False, 0))]:
        got = parse_stop(good, 300)
        assert (got["stop_at_zero"], got["past_zero"]) == fields
    for bad in ["zero+", "e", "e3x", "zero50", "E30"]:
        with pytest.raises(ValueError):
            parse_stop(bad, 300)


def test_metrics_rows_are_written_as_pandas_writes_them(tiny, tmp_path):
    """A training job writes metrics.csv without importing pandas (atomic.write_rows); the
    bytes are pandas.DataFrame(rows).to_csv's, for a run's own rows and for every kind of column pandas
    infers: whole numbers, floats, whole numbers with a gap, booleans with a gap, strings
    with commas and quotes, a column of gaps, NaN, and a key that appears late."""
    from deeptheory import atomic

    run = train_run(spec(max_epochs=6, eval_every=2), tiny)
    made = [run.rows,
            [{"a": 1, "b": 0.1, "c": None, "d": True, "e": "x,y", "f": None, "g": float("nan")},
             {"a": 2, "b": 2, "c": 120, "d": None, "e": 'say "z"', "f": None, "g": 1e-05, "late": 3.0},
             {"a": 3, "b": 1e300, "c": 7, "d": False, "e": "", "f": None, "g": float("inf")}]]
    for rows in made:
        atomic.write_rows(tmp_path / "ours.csv", rows)
        atomic.write_csv(tmp_path / "pandas.csv", pd.DataFrame(rows))
        assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
