import torch

from deeptheory import models


def test_allconv5_width16_has_about_ten_thousand_weights():
    # memo073 Figs 1-2: "16 channels per hidden layer, resulting in only W ~ 10000 weights".
    # 3x3 convs 3->16, 16->16 (x3), then a 4x4 conv 16->10, with biases: 9,978. One input
    # channel instead of three drops 2 x 9 x 16 weights of the first layer.
    assert models.n_params(models.build("allconv5", 16, (3, 32, 32), 10)) == 9978
    assert models.n_params(models.build("allconv5", 16, (1, 28, 28), 10)) == 9978 - 2 * 9 * 16


def test_families_map_inputs_to_class_scores():
    for family in models.FAMILIES:
        for shape in [(1, 28, 28), (3, 32, 32)]:
            net = models.build(family, 4, shape, 10)
            assert net(torch.zeros(2, *shape)).shape == (2, 10)


def test_allconv5_has_no_pooling():
    net = models.build("allconv5", 8, (3, 32, 32), 10)
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in net.modules())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 5


def test_init_is_seeded_and_scaled():
    a, b, c = (models.build("allconv5", 4, (1, 28, 28), 10) for _ in range(3))
    models.init_params(a, 7)
    models.init_params(b, 7)
    models.init_params(c, 7, scale=10.0)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        torch.testing.assert_close(pc, 10 * pa)


def test_the_polynomial_net_is_allconv5_with_a_degree_10_fit_of_relu():
    """memo073 Fig 21: same architecture and weights, each ReLU replaced by its polynomial
    fit; the fit is close to ReLU on its interval and a polynomial (not clipped) outside."""
    x = torch.linspace(-models.POLY_INTERVAL, models.POLY_INTERVAL, 1001)
    poly = models.PolyReLU()(x)
    assert len(models.POLY_RELU) == models.POLY_DEGREE + 1
    assert float((poly - torch.relu(x)).abs().max()) < 0.03 * models.POLY_INTERVAL
    outside = torch.tensor([2.0 * models.POLY_INTERVAL])
    assert float(models.PolyReLU()(outside)) > 10 * float(outside)
    relu, polynet = models.build("allconv5", 4, (1, 28, 28), 10), models.build("polyconv5", 4, (1, 28, 28), 10)
    assert models.n_params(relu) == models.n_params(polynet)
    polynet.load_state_dict(relu.state_dict())
    assert sum(isinstance(m, models.PolyReLU) for m in polynet.modules()) == 4


def test_the_batch_statistics_families_are_those_with_batch_norm():
    """spec.BATCH_STATISTICS (read by the DAG without building models) names exactly the
    families whose modules normalize with batch statistics."""
    from deeptheory.spec import BATCH_STATISTICS

    with_bn = {f for f in models.FAMILIES
               if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                      for m in models.build(f, 4, (1, 28, 28), 10).modules())}
    assert with_bn == set(BATCH_STATISTICS)
