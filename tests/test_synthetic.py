"""Each synthetic measure on a case with a known answer."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from deeptheory import claims, report
from deeptheory.fits import log_fit
from deeptheory.synthetic import compositional, hessian, langevin, linear, nets
from deeptheory.targets import Inputs, get
from deeptheory.targets.compositional import params_to_reach

from conftest import config_claims, held


def numeric_grad(f_grad_pair, w, eps=1e-6):
    U, _ = f_grad_pair
    g = np.zeros_like(w)
    for j in range(w.shape[1]):
        e = np.zeros_like(w)
        e[:, j] = eps
        g[:, j] = (U(w + e) - U(w - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("P", [langevin.TwoWells(), langevin.ValleyAndPoint()])
def test_potential_gradients_match_finite_differences(P):
    w = np.random.default_rng(0).uniform(0, P.box, (20, 3))
    np.testing.assert_allclose(P.grad(w), numeric_grad((P.U, None), w), atol=1e-6)


def test_minima_have_equal_depth():
    P, V = langevin.TwoWells(), langevin.ValleyAndPoint()
    centers = np.array([[P.a] * 3, [P.b] * 3])
    assert abs(np.diff(P.U(centers))[0]) < 1e-3
    assert abs(np.diff(V.U(np.array([[V.v, 0.0, 0.0], [V.p] * 3])))[0]) < 1e-3


def test_basins_and_ratio_share():
    P = langevin.TwoWells()
    states = np.array([[[P.a] * 2, [P.b] * 2, [8.0, 0.0], [P.b + 0.5] * 2]])  # narrow, flat, plateau, flat
    in_well, in_flat = langevin.basins(P, states)
    assert in_well.tolist() == [[True, True, False, True]]
    assert in_flat.tolist() == [[False, True, False, True]]
    share, se = langevin.ratio_with_error(np.repeat(in_flat, 2, 0), np.repeat(in_well, 2, 0))
    assert share == pytest.approx(2 / 3) and se > 0


def test_gdl_matches_the_boltzmann_distribution_of_a_double_well():
    exact = langevin.boltzmann_right_share(0.4)
    got, se = langevin.sampled_right_share(0.4, eta=0.01, steps=3000, chains=1000, seed=0)
    assert 0 < se < 0.02
    assert abs(got - exact) <= 3 * se
    # and the exact share is what integration by hand gives for a symmetric well
    assert abs(langevin.boltzmann_right_share(0.4, tilt=0.0) - 0.5) < 1e-9


def test_gdl_on_torch_tensors_samples_the_same_boltzmann_share():
    """The GPU path (torch tensors on the profile's device), run here on the CPU."""
    exact = langevin.boltzmann_right_share(0.4)
    got, se = langevin.sampled_right_share(0.4, eta=0.01, steps=3000, chains=1000, seed=0, device="cpu")
    assert 0 < se < 0.02 and abs(got - exact) <= 3 * se


@pytest.mark.parametrize("P", [langevin.TwoWells(), langevin.ValleyAndPoint()])
def test_noiseless_chains_follow_the_same_path_as_arrays_and_as_tensors(P):
    w0 = np.random.default_rng(1).uniform(0, P.box, (50, 3))
    run = {dev: langevin.run_chains(P.grad, w0, 200, 0.5, 0.0, np.random.default_rng(2), box=P.box, device=dev)
           for dev in (None, "cpu")}
    np.testing.assert_allclose(run["cpu"], run[None], rtol=0, atol=1e-10)
    shifts = np.random.default_rng(3).normal(0, 1.5, (16, 3))
    full = {dev: langevin.run_chains(langevin.full_gradient(P, shifts), w0, 50, 0.5, 0.0, np.random.default_rng(2),
                                     box=P.box, device=dev) for dev in (None, "cpu")}
    np.testing.assert_allclose(full["cpu"], full[None], rtol=0, atol=1e-10)
    # minibatch noise draws its own indices on each path; both keep the chains on the box
    sgd = langevin.run_chains(None, w0, 50, 0.5, 0.1, np.random.default_rng(2), box=P.box, device="cpu",
                              grad_noise=langevin.minibatch_gradient(P, shifts, 2))
    assert sgd.shape == full[None].shape and ((0 <= sgd) & (sgd < P.box)).all()
    assert langevin.chain_device("cuda:0") == "cuda:0" and langevin.chain_device("cpu") is None


def test_share_with_error_uses_chain_means():
    flags = np.zeros((10, 4), bool)
    flags[:, :2] = True
    share, se = langevin.share_with_error(flags)
    assert share == 0.5 and se == pytest.approx(np.std([1, 1, 0, 0], ddof=1) / 2)


def test_gd_and_sgd_reach_the_minimum_norm_solution():
    rng = np.random.default_rng(0)
    X, y = linear.least_squares(8, 20, rng)
    w_pinv = np.linalg.pinv(X) @ y
    w0 = rng.standard_normal(20)
    for batch in (None, 1):
        w, _ = linear.gd_least_squares(X, y, np.zeros(20), 5000, batch, np.random.default_rng(1))
        np.testing.assert_allclose(w, w_pinv, atol=1e-8)
        w, _ = linear.gd_least_squares(X, y, w0, 5000, batch, np.random.default_rng(1))
        np.testing.assert_allclose(w, w_pinv + linear.null_space_part(X, w0), atol=1e-8)


def test_svm_on_a_case_solved_by_hand():
    # Margin constraints bind at (1, 0) and (-1, 0): w = (1, 0).
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 1.0], [-3.0, 0.5]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    np.testing.assert_allclose(linear.hard_margin_svm(X, y), [1.0, 0.0], atol=1e-6)


def test_gd_on_separable_data_grows_and_turns_toward_the_svm():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 1.0], [-3.0, 0.5]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    _, trace = linear.gd_linear(X, y, "exp", 20000, 0.1)
    norms = [np.linalg.norm(w) for _, w, _ in trace]
    angles = [linear.angle(w, np.array([1.0, 0.0])) for _, w, _ in trace]
    assert norms[-1] > norms[len(norms) // 2] > norms[0]
    assert angles[-1] < 0.5 * angles[len(angles) // 3]


def test_loss_gradients_are_derivatives():
    m = np.array([-1.0, 0.2, 3.0])
    for loss in ("exp", "logistic"):
        _, d = linear.loss_grad(loss, m)
        num = [(linear.loss_grad(loss, m + e)[0] - linear.loss_grad(loss, m - e)[0]) / 2e-6
               for e in np.eye(3) * 1e-6]
        np.testing.assert_allclose(d, num, rtol=1e-5)


def test_log_fit_recovers_a_logarithm():
    t = np.geomspace(10, 1e5, 20)
    slope, r2 = log_fit(t, 3 + 2 * np.log(t))
    assert slope == pytest.approx(2) and r2 == pytest.approx(1)


def test_homogeneous_net_scales_with_degree_equal_to_depth():
    weights = nets.relu_net([2, 5, 4, 1], seed=0, scale=1.0)
    x = torch.randn(7, 2, dtype=torch.float64)
    out = nets.forward(weights, x)
    scaled = nets.forward([2 * W for W in weights], x)
    torch.testing.assert_close(scaled, 8 * out)


def test_small_step_gd_keeps_layer_norm_differences():
    rng = np.random.default_rng(0)
    X, y = linear.separable_blobs(20, 3, 0.3, rng)
    rec = nets.train_homogeneous(X, y, [3, 6, 6, 1], "exp", 2000, 0.005, init_scale=1.0)
    sq = np.array([[r[f"sq_norm_{k}"] for k in (1, 2, 3)] for r in rec])
    diffs = sq[:, :-1] - sq[:, 1:]
    growth = (sq[-1] - sq[0]).max()
    assert growth > 0.1
    assert np.abs(diffs - diffs[0]).max() < 0.02 * growth


def test_compositional_target_is_the_binary_tree():
    x = torch.tensor([[0.1, -0.4, 0.7, 0.2]])
    left = compositional.quadratic(torch.tensor(0.1), torch.tensor(-0.4))
    right = compositional.quadratic(torch.tensor(0.7), torch.tensor(0.2))
    torch.testing.assert_close(compositional.target(x)[0], 0.59 * torch.cos(1.5 * math.pi * (left + right)))
    grid = torch.rand(1000, 2) * 2 - 1
    assert compositional.quadratic(grid[:, 0], grid[:, 1]).abs().max() <= 1


def test_parameter_counts_match_the_formulas():
    g = torch.Generator().manual_seed(0)
    for n, k in [(4, 3), (8, 16)]:
        assert compositional.n_params(compositional.TreeNet(n, k, g)) == compositional.tree_params(n, k)
        m = compositional.matched_shallow_width(n, compositional.tree_params(n, k))
        shallow = compositional.n_params(compositional.shallow_net(n, m, g))
        assert abs(shallow - compositional.tree_params(n, k)) <= n + 2


def test_params_to_reach():
    frame = pd.DataFrame({"params": [10, 20, 40], "test_mse": [0.5, 0.04, 0.01]})
    assert params_to_reach(frame, 0.05) == 20
    assert params_to_reach(frame, 0.001) == float("inf")


def test_hessian_at_a_zero_loss_minimum_obeys_the_rank_bound():
    """A tanh net of p = 13 parameters fit to n = 5 points: the float64 Hessian of the loss
    is J^T J / n (the residual part vanishes with the residuals), of rank n, so exactly p - n
    eigenvalues are zero; past p points, at the teacher, none is."""
    d, hidden, gen = 2, 3, torch.Generator().manual_seed(0)
    p, tol = hessian.n_params(d, hidden), claims.Tolerances(config_claims())
    assert p == 13
    teacher = hessian.teacher(d, hidden, gen)
    X, y = hessian.data(5, d, teacher, hidden, gen)
    theta, trace = hessian.levenberg_marquardt(hessian.init(d, hidden, gen), X, y, hidden, 200)
    m = hessian.at_minimum(theta, X, y, hidden)
    assert m["loss"] <= tol.interp_loss and m["grad_norm"] < tol.gradient_converged and trace[-1] < trace[0]
    assert m["jacobian_rank"] == 5 and m["residual_part"] < 1e-12
    assert hessian.near_zero(m["eigenvalues"], tol.hessian_zero_rtol) == p - 5
    # the Hessian autograd forms is the second derivative: a finite difference of the gradient agrees
    grad = torch.func.grad(lambda t: hessian.loss(t, X, y, hidden))
    e, h = torch.zeros(p, dtype=torch.float64), 1e-5
    e[0] = h
    column = (grad(theta + e) - grad(theta - e)) / (2 * h)
    H = torch.func.hessian(lambda t: hessian.loss(t, X, y, hidden))(theta)
    torch.testing.assert_close(column, H[:, 0], atol=1e-7, rtol=1e-5)
    X, y = hessian.data(40, d, teacher, hidden, gen)
    m = hessian.at_minimum(teacher, X, y, hidden)
    assert m["loss"] == 0.0 and m["jacobian_rank"] == p
    assert hessian.near_zero(m["eigenvalues"], tol.hessian_zero_rtol) == 0


@pytest.mark.parametrize("tid,cfg", [
    ("t3-minnorm", {"n": 5, "d": 12, "steps": 3000, "batch": 1}),
    ("slides-nonseparable", {"n": 40, "steps": 5000, "eta": 0.1, "init_scale": 0.5}),
    ("slides-degenerate", {"d": 2, "hidden": 3, "n": [5, 40], "steps": 100}),
])
def test_report_writes_figure_table_claims_and_provenance(tmp_path, tid, cfg):
    inputs = Inputs(tid, cfg, claims.Tolerances(config_claims()), seed=0)
    rows = report.build(get(tid), inputs, tmp_path, config={"target": cfg})
    for name in report.OUTPUTS.values():
        assert (tmp_path / name).stat().st_size > 0, name
    assert held(rows).dtype == bool and rows["id"].str.startswith(f"{tid}:").all()
    assert "synthetic, no data set" in (tmp_path / "table.md").read_text()
