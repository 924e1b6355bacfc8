"""The MiniRocket head: features against a plain numpy reading of the method, streaming, the ridge fit, and mixing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from apptool_gesture.model import StepGraph
from apptool_gesture.rocket import MiniRocket, fit_mix_shares, fit_rocket_head, on_grid
from apptool_gesture.rocket_plan import KERNELS, dilations_for, fit_ridge, state_sizes
from apptool_gesture.streaming import state_shapes
from apptool_gesture.task import GestureTask

from apptool.onnx_export import export_onnx


def reference_proportions(rocket: MiniRocket, seq: np.ndarray) -> np.ndarray:
    """Every feature of one (T, C) sequence by loops: causal dilated convolution, then the share of outputs above each bias."""
    x = on_grid(torch.from_numpy(seq)).double().numpy()
    frames, out = len(x), []
    for i, dilation in enumerate(rocket.dilations):
        weight, bias = getattr(rocket, f"weight{i}").double().numpy(), getattr(rocket, f"bias{i}").double().numpy()
        for k in range(len(KERNELS)):
            conv = np.zeros(frames)
            for t in range(frames):
                for j in range(9):
                    source = t - (8 - j) * dilation
                    if source >= 0:
                        conv[t] += weight[k, :, j] @ x[source]
            unpadded = (k + i) % 2 == 1
            counted = conv[8 * dilation :] if unpadded else conv
            for b in bias[k]:
                out.append((counted > b).sum() / max(len(counted), 1))
    return np.array(out)


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    train = [rng.standard_normal((n, 3)).astype(np.float32).cumsum(0) for n in (40, 25, 60, 33)]
    rocket = MiniRocket(3, 40, num_features=600, seed=1)
    rocket.fit(train)
    return rocket, rng


def test_dilations_follow_minirocket_and_fit_the_length():
    dilations, biases = dilations_for(150, 10_000)
    assert dilations[0] == 1 and dilations == sorted(set(dilations)) and 8 * dilations[-1] <= 150 - 1  # kernel fits
    assert len(KERNELS) * sum(biases) == 9_996 and len(dilations) <= 32
    assert dilations_for(5, 10_000)[0] == [1]  # shorter than one kernel: no dilation past 1
    assert state_sizes(150, 10_000) == (8 * dilations[-1], 9_996)
    assert (KERNELS.sum(1) == 0).all() and len({tuple(k) for k in KERNELS}) == 84


def test_features_are_what_the_method_defines_padding_and_lengths_included(fitted):
    rocket, rng = fitted
    seqs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (37, 12, 3)]
    batch = torch.full((3, 37, 3), 50.0)  # whatever sits in the padding must not matter
    for i, s in enumerate(seqs):
        batch[i, : len(s)] = torch.from_numpy(s)
    with torch.no_grad():
        got = rocket(batch, torch.tensor([37, 12, 3])).double().numpy()
    for i, s in enumerate(seqs):
        np.testing.assert_allclose(got[i], reference_proportions(rocket, s), atol=1e-6)
    assert 0.2 < got[0].mean() < 0.8  # biases are quantiles of real outputs: the features are not all 0 or 1


def test_streaming_counts_equal_the_offline_features_exactly(fitted):
    rocket, rng = fitted
    x = torch.from_numpy(rng.standard_normal((2, 30, 3)).astype(np.float32))
    lengths = torch.tensor([30, 17])
    with torch.no_grad():
        offline = rocket(x, lengths)
        buffer, counts = torch.zeros(2, rocket.buffer_frames, 3), torch.zeros(2, rocket.num_features)
        for t in range(30):
            streamed, buffer, counts = rocket.step(x[:, t], buffer, counts, torch.full((2, 1), t + 1.0))
            for i in np.flatnonzero(lengths.numpy() - 1 == t):
                torch.testing.assert_close(streamed[i], offline[i], atol=0, rtol=0)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_ridge_weights_fold_the_scaling_and_decide_as_scikit_learn(n_classes):
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(n_classes)
    centres = rng.normal(0, 1, (n_classes, 40))
    labels = np.arange(60) % n_classes
    features = (centres[labels] + rng.normal(0, 1.5, (60, 40))) * rng.uniform(0.1, 10, 40)
    weight, bias, summary = fit_ridge(features, labels, n_classes)
    test = (centres[np.arange(30) % n_classes] + rng.normal(0, 1.5, (30, 40))) * 1.0
    reference = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))).fit(features, labels)
    assert ((test @ weight.T + bias).argmax(1) == reference.predict(test)).all()
    assert summary["alpha"] == reference[-1].alpha_ and 0.5 < summary["loo_accuracy"] <= 1.0
    assert summary["temperature"] > 0


def test_ridge_never_answers_a_class_its_training_part_lacks():
    rng = np.random.default_rng(0)
    labels = np.array([0, 2] * 10)
    features = rng.normal(0, 1, (20, 8)) + labels[:, None]
    weight, bias, _ = fit_ridge(features, labels, 3)
    assert (weight[1] == 0).all() and bias[1] < -1e3
    assert set((features @ weight.T + bias).argmax(1)) <= {0, 2}


def two_waves(seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """20 noisy sines of two frequencies (50 frames, 1 channel), alternating classes."""
    t = np.linspace(0, 6, 50, dtype=np.float32)
    rng = np.random.default_rng(seed)
    seqs = [(np.sin(t * (1 + 4 * (i % 2))) + rng.normal(0, 0.1, 50)).astype(np.float32)[:, None] for i in range(20)]
    return seqs, np.arange(20) % 2


HEAD_CONFIG = {
    "input": {"n_features": 1, "raw_dims": 1, "median_frames": 50},
    "labels": ["slow", "fast"],
    "model": {"hidden": 4, "layers": 1, "conv_channels": 0, "fcn_channels": [], "rocket_features": 840},
}


def untrained_net_with_head():
    torch.manual_seed(0)
    return GestureTask().build_model(HEAD_CONFIG).eval()


def test_prepare_fits_the_head_and_the_output_mixes_both_heads():
    """Before prepare the MiniRocket head is uniform; after it, it alone separates the classes the network has not learned."""
    net = untrained_net_with_head()
    seqs, labels = two_waves(0)
    x, lengths = torch.from_numpy(np.stack(seqs)), torch.full((20,), 50)
    with torch.no_grad():
        network = torch.softmax(net.network_logits(x, lengths), 1)
        torch.testing.assert_close(torch.softmax(net(x, lengths), 1), (network + 0.5) / 2)  # rocket head: 1/2 each
        summary = fit_rocket_head(net, seqs, labels)
        mixed = net(x, lengths)
    assert summary["features"] == 840 and summary["loo_accuracy"] == 1.0
    assert (mixed.argmax(1).numpy() == labels).all() and torch.isfinite(mixed).all()


def test_calibration_shares_the_mix_by_each_heads_held_out_log_loss():
    """A fitted head beside an untrained network takes most of the mix; the same head made to lie takes none of it."""
    net = untrained_net_with_head()
    fit_rocket_head(net, *two_waves(0))
    held_out, labels = two_waves(1)
    x, lengths = torch.from_numpy(np.stack(held_out)), torch.full((20,), 50)
    trusted = fit_mix_shares(net, held_out, labels)
    assert trusted["minirocket_share"] > 0.5 and trusted["val_accuracy"]["minirocket"] == 1.0
    share = trusted["minirocket_share"]
    with torch.no_grad():
        network = torch.softmax(net.network_logits(x, lengths), 1)
        rocket = torch.softmax(net.rocket_logits(net.rocket(x, lengths)), 1)
        torch.testing.assert_close(torch.exp(net(x, lengths)), (1 - share) * network + share * rocket)
        net.rocket_weight.neg_()
        net.rocket_bias.neg_()
    assert fit_mix_shares(net, held_out, labels)["minirocket_share"] == 0.0
    with torch.no_grad():
        torch.testing.assert_close(torch.exp(net(x, lengths)), network, atol=1e-5, rtol=0)


def test_a_head_calibrated_out_of_the_mix_is_not_run(monkeypatch, tmp_path):
    """Share 0: neither the offline nor the step graph computes MiniRocket's features, in torch or in ONNX; the step graph
    still passes its state on."""
    net = untrained_net_with_head()
    fit_rocket_head(net, *two_waves(0))
    net.rocket_weight.neg_()  # a head that lies: calibration gives it no share
    net.rocket_bias.neg_()
    held_out, labels = two_waves(1)
    assert fit_mix_shares(net, held_out, labels)["minirocket_share"] == 0.0 and not net.runs_rocket
    x, lengths = torch.from_numpy(np.stack(held_out)), torch.full((20,), 50)
    shapes = state_shapes(HEAD_CONFIG, 2)
    names, state = list(shapes), [torch.ones(shape) for shape in shapes.values()]
    monkeypatch.setattr(net.rocket, "forward", lambda *a: pytest.fail("MiniRocket ran offline"))
    monkeypatch.setattr(net.rocket, "step", lambda *a: pytest.fail("MiniRocket ran streaming"))
    with torch.no_grad():
        torch.testing.assert_close(
            torch.exp(net(x, lengths)), torch.softmax(net.network_logits(x, lengths), 1), atol=1e-5, rtol=0
        )
        out = StepGraph(net, names)(x[:2, 0], *state)
    passed = dict(zip(names, out[1:]))
    assert (
        passed["rocket_buf"] is state[names.index("rocket_buf")]
        and passed["rocket_counts"] is state[names.index("rocket_counts")]
    )
    report = export_onnx(GestureTask(), net, {**HEAD_CONFIG, "task": "gesture", "seed": 0}, tmp_path)
    assert max(report["parity_max_abs_diff"].values()) < 1e-5
    for graph in ("model", "step"):  # this network has no convolution of its own: any Conv would be MiniRocket's
        assert "Conv" not in {node.op_type for node in onnx.load(str(tmp_path / f"{graph}.onnx")).graph.node}
