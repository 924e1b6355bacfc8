"""Gesture task: generator, .ts/CSV readers, metrics, model/graph equivalence, strokes, end-to-end training."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from apptool_gesture.csvformat import read_csv_sequence
from apptool_gesture.data import load_splits
from apptool_gesture.features import features, fit_input_spec
from apptool_gesture.generator import GESTURES, generate, make_gesture
from apptool_gesture.metrics import accuracy, confusion_matrix, macro_f1
from apptool_gesture.stroke import parse_points, points_to_path
from apptool_gesture.task import GestureTask
from apptool_gesture.tsformat import read_ts

from apptool.bundle import CONFIG, METRICS, WEIGHTS
from apptool.errors import ConfigError, DataError, InputError

CLEAN = {
    "kind": "pen",
    "min_len": 60,
    "max_len": 80,
    "noise": 0.0,
    "jitter": 0.0,
    "max_rotation_deg": 20,
    "scale": [0.5, 1.0],
    "idle_frames": 0,
}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- generator -------------------------------------------------------------------------
def test_generator_is_deterministic_by_seed():
    a, la = generate(CLEAN, 2, seed=5)
    b, lb = generate(CLEAN, 2, seed=5)
    c, _ = generate(CLEAN, 2, seed=6)
    assert la == lb and sorted(la) == sorted(list(range(len(GESTURES))) * 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and np.allclose(x, y) for x, y in zip(a, c))


def _winding_turns(path: np.ndarray) -> float:
    centre = (path.min(0) + path.max(0)) / 2
    angle = np.unwrap(np.arctan2(path[:, 1] - centre[1], path[:, 0] - centre[0]))
    return abs(angle[-1] - angle[0]) / (2 * np.pi)


@pytest.mark.parametrize("seed", range(4))
def test_generated_gestures_look_like_their_labels(seed):
    rng = np.random.default_rng(seed)
    for label in GESTURES:
        path = make_gesture(label, rng, CLEAN)
        move = path[-1] - path[0]
        if label.startswith("swipe_"):
            want = {"swipe_left": (-1, 0), "swipe_right": (1, 0), "swipe_up": (0, 1), "swipe_down": (0, -1)}[label]
            assert np.dot(move / np.linalg.norm(move), want) > np.cos(np.deg2rad(35)), label
        elif label == "circle":
            assert 0.7 < _winding_turns(path) < 1.2
        elif label == "spiral":
            assert _winding_turns(path) > 1.3  # more than a circle ever turns
        elif label == "zigzag":
            vertical = np.sign(np.diff(path[::4, 1]))
            assert np.count_nonzero(np.diff(vertical[vertical != 0])) >= 2
        elif label == "check":
            assert path[:, 1].argmin() < len(path) / 2 and move[1] > 0 and move[0] > 0
        elif label == "cross":
            assert move[0] < 0 and move[1] < 0  # the second stroke ends bottom left


def test_pen_features_are_causal_so_streaming_sees_what_offline_sees():
    seq = make_gesture("zigzag", np.random.default_rng(0), CLEAN)
    assert np.allclose(features(seq[:17], "pen"), features(seq, "pen")[:17])
    assert features(seq, "pen").shape == (len(seq), 4)


def test_accel_kind_has_three_channels_with_gravity():
    seq = make_gesture("circle", np.random.default_rng(0), {**CLEAN, "kind": "accel", "max_tilt_deg": 0})
    assert seq.shape[1] == 3 and abs(np.median(seq[:, 1]) - 1.0) < 0.2
    assert features(seq, "accel").shape == (len(seq), 6) and not features(seq, "accel")[0, :3].any()
    with pytest.raises(ConfigError, match="data.kind"):
        make_gesture("circle", np.random.default_rng(0), {**CLEAN, "kind": "gyro"})


# -- .ts reader ------------------------------------------------------------------------
def test_ts_univariate_with_real_world_quirks(tmp_path):
    path = write(
        tmp_path / "Quirky_TRAIN.ts",
        "# comment line\r\n\r\n@ProblemName Quirky\r\n@timeStamps FALSE\r\n@missing true\r\n"
        "@univariate True\r\n@equalLength true\r\n@seriesLength 4\r\n@someVendorTag 42\r\n"
        "@classLabel true up down\r\n@data\r\n 1.0, 2.0 ,3,4:up\r\n\r\n# between cases\r\n"
        "4,?,2,1 : down\r\n",
    )
    ts = read_ts(path)
    assert ts.problem_name == "Quirky" and ts.class_names == ["up", "down"] and ts.labels == ["up", "down"]
    assert ts.dims == 1 and len(ts.series) == 2
    np.testing.assert_allclose(ts.series[1][:, 0], [4, 3, 2, 1])  # '?' interpolated


def test_ts_multivariate_unequal_length_and_padding(tmp_path):
    path = write(
        tmp_path / "Multi_TRAIN.ts",
        "@problemName Multi\n@univariate false\n@dimensions 2\n@equalLength false\n"
        "@classLabel true a b c\n@data\n"
        "1,2,3:4,5,6:a\n1,2,3,4,5,?,?:5,4,3,2,1,?,?:c\n?,2:7,8:b\n",
    )
    ts = read_ts(path)
    assert [s.shape for s in ts.series] == [(3, 2), (5, 2), (2, 2)]
    assert ts.labels == ["a", "c", "b"]
    np.testing.assert_allclose(ts.series[2][:, 0], [2, 2])  # a leading '?' takes the nearest value


@pytest.mark.parametrize(
    "body, line, words",
    [
        ("@classLabel true a b\n@data\n1,2,x:a\n", 3, "value 3"),
        ("@classLabel true a b\n@data\n1,2:a\n1,2:z\n", 4, "not declared"),
        ("@dimensions 2\n@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n", 5, "declares 2"),
        ("@classLabel true a\n@data\n1,2:3:a\n", 3, "different lengths"),
        ("@equalLength true\n@classLabel true a\n@data\n1,2:a\n1,2,3:a\n", 5, "@equalLength"),
        ("@timeStamps true\n@data\n", 1, "timeStamps"),
        ("@classLabel true a\n@data\n(2007-01-01 00:00:00,1.0):a\n", 3, "timestamped"),
        ("1,2,3:a\n", 1, "header"),
        ("@classLabel true a\n@data\n1,2:a\n@dimensions 1\n", 4, "after @data"),
        ("@classLabel true\n@data\n", 1, "class names"),
        ("@classLabel true a\n@data\n?,?:a\n", 3, "missing"),
        ("@univariate maybe\n@data\n", 1, "true or false"),
    ],
)
def test_malformed_ts_names_file_and_line(tmp_path, body, line, words):
    path = write(tmp_path / "Bad_TRAIN.ts", body)
    with pytest.raises(DataError) as caught:
        read_ts(path)
    message = str(caught.value)
    assert f"Bad_TRAIN.ts:{line}" in message and words in message


def test_ts_without_data_section(tmp_path):
    with pytest.raises(DataError, match="no @data"):
        read_ts(write(tmp_path / "x.ts", "@problemName x\n"))


# -- CSV reader ------------------------------------------------------------------------
def test_csv_with_header_time_column_spaces_and_missing(tmp_path):
    path = write(tmp_path / "s.csv", "t, x ,y\n0,1,10\n\n1, 2 ,?\n2,3,30\n")
    np.testing.assert_allclose(read_csv_sequence(path), [[1, 10], [2, 20], [3, 30]])
    np.testing.assert_allclose(read_csv_sequence(write(tmp_path / "n.csv", "1,2\n3,4\n")), [[1, 2], [3, 4]])


def test_malformed_csv_names_file_and_line(tmp_path):
    with pytest.raises(DataError, match=r"bad\.csv:3, column 2"):
        read_csv_sequence(write(tmp_path / "bad.csv", "x,y\n1,2\n3,oops\n"))
    with pytest.raises(DataError, match=r"ragged\.csv:3: 3 fields"):
        read_csv_sequence(write(tmp_path / "ragged.csv", "1,2\n3,4\n5,6,7\n"))


def test_read_input_turns_data_errors_into_input_errors(tmp_path):
    task = GestureTask()
    with pytest.raises(InputError, match="bad.ts:2"):
        list(task.read_input(write(tmp_path / "bad.ts", "@data\n1,x\n")))
    items = list(task.read_input(write(tmp_path / "ok.ts", "@data\n1,2,3\n4,5\n")))
    assert [name for name, _ in items] == ["ok.ts#1", "ok.ts#2"] and items[1][1].shape == (2, 1)


# -- splits from files ---------------------------------------------------------------------
def write_ts_problem(folder: Path, n_train: int = 24, n_test: int = 9, seed: int = 0) -> Path:
    """A multivariate, unequal-length 3-class problem: rising, falling or oscillating 2-channel signals."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("TRAIN", n_train), ("TEST", n_test)):
        lines = [
            "# written by the gesture tests",
            "@problemName Toy",
            "@timeStamps false",
            "@missing false",
            "@univariate false",
            "@dimensions 2",
            "@equalLength false",
            "@classLabel true rise fall wave",
            "@data",
        ]
        for i in range(n):
            label = ("rise", "fall", "wave")[i % 3]
            t = np.linspace(0, 1, int(rng.integers(8, 20)))
            base = {"rise": t, "fall": 1 - t, "wave": np.sin(6 * t)}[label]
            dims = [base + 0.05 * rng.standard_normal(len(t)), -base + 0.05 * rng.standard_normal(len(t))]
            lines.append(":".join(",".join(f"{v:.4f}" for v in d) for d in dims) + f":{label}")
        (folder / f"Toy_{split}.ts").write_text("\n".join(lines) + "\n")
    return folder


def test_ts_splits_keep_class_names_and_fit_statistics_on_train_only(tmp_path):
    task = GestureTask()
    train, test, info = load_splits(task.config("tiny"), write_ts_problem(tmp_path / "toy"))
    assert info["labels"] == ["rise", "fall", "wave"] and info["dataset"]["format"] == "ts"
    assert info["input"]["raw_dims"] == 2 and len(train) == 24 and len(test) == 9
    assert len({len(s) for s in train.sequences}) > 1
    expected = fit_input_spec(train.sequences, "raw", 50)
    assert info["input"]["mean"] == expected["mean"]
    x, y = test[0]  # the training split's items are augmented windows
    assert x.dtype == np.float32 and x.shape == test.sequences[0].shape and y == test.labels[0]


def test_series_norm_statistics_are_fitted_on_the_training_split_after_per_series_normalisation(tmp_path):
    from apptool_gesture.features import znormalise

    config = GestureTask().config("tiny", {"data": {"series_norm": True}})
    train, test, info = load_splits(config, write_ts_problem(tmp_path / "toy"))
    spec = info["input"]
    assert spec["series_norm"] is True
    frames = np.concatenate([znormalise(s) for s in train.sequences])
    np.testing.assert_allclose(spec["mean"], frames.mean(0), atol=1e-6)
    np.testing.assert_allclose(spec["std"], frames.std(0), rtol=1e-5)
    seq = test.sequences[0]
    expected = (znormalise(seq) - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
    np.testing.assert_allclose(test[0][0], expected, atol=1e-6)
    np.testing.assert_allclose(test.transform(seq * 7.0 + 3.0), expected, atol=1e-5)  # offset and scale are gone


def test_long_sequences_are_averaged_in_blocks_derived_from_the_median_training_length():
    from apptool_gesture.features import pool_factor, pool_frames, prepare

    rng = np.random.default_rng(0)
    train = [rng.standard_normal((n, 2)).astype(np.float32) for n in (1400, 1460, 1500)]
    assert pool_factor(train, 256) == 6 and pool_factor(train, 0) == 1 and pool_factor(train, 2000) == 1
    seq = np.arange(14, dtype=np.float32)[:, None]
    np.testing.assert_allclose(pool_frames(seq, 6)[:, 0], [2.5, 8.5, 12.5])  # the last block holds 2 frames
    spec = fit_input_spec(train, "raw", 50, target_frames=256)
    assert spec["pool"] == 6
    pooled = np.concatenate([pool_frames(s, 6) for s in train])
    np.testing.assert_allclose(spec["mean"], pooled.mean(0), atol=1e-6)
    assert prepare(train[1], spec).shape == (244, 2)
    before_pooling = {key: value for key, value in spec.items() if key != "pool"}  # a bundle from before pooling
    assert prepare(train[1], before_pooling).shape == (1460, 2)


def test_training_split_exposes_its_classes_so_validation_is_stratified(tmp_path):
    from apptool.engine.trainer import split_validation

    train, _, _ = load_splits(GestureTask().config("tiny"), write_ts_problem(tmp_path / "toy", n_train=12))
    fit, val = split_validation(train, 0.1, seed=0)
    assert sorted(train.labels[i] for i in val.indices) == [0, 1, 2]  # one of each class, though 10 % is 1
    assert {train.labels[i] for i in fit.indices} == {0, 1, 2}


def test_csv_layout_splits(tmp_path):
    for split in ("train", "test"):
        for label, sign in (("pos", 1), ("neg", -1)):
            (tmp_path / split / label).mkdir(parents=True)
            write(tmp_path / split / label / "a.csv", f"a,b\n{sign},0\n{2 * sign},1\n")
    train, test, info = load_splits(GestureTask().config("tiny"), tmp_path)
    assert info["labels"] == ["neg", "pos"] and info["dataset"]["format"] == "csv" and len(test) == 2


def test_test_split_with_unknown_class_is_rejected(tmp_path):
    folder = write_ts_problem(tmp_path / "toy")
    test = folder / "Toy_TEST.ts"
    test.write_text(
        test.read_text().replace("@classLabel true rise fall wave", "@classLabel true rise fall wave odd") + "1,2:3,4:odd\n"
    )
    with pytest.raises(DataError, match="odd"):
        load_splits(GestureTask().config("tiny"), folder)


# -- metrics -----------------------------------------------------------------------------
def test_metrics_by_hand_and_against_sklearn():
    y_true, y_pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    # F1: class 0 = 2·1/(2+2) = 0.5, class 1 = 2·2/(3+2) = 0.8, class 2 = 2·1/(1+2) = 2/3
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert macro_f1([0, 0], [0, 0], 5) == 1.0  # classes absent from both are left out, as sklearn does
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 6, 200), rng.integers(0, 5, 200)
    assert macro_f1(a, b, 6) == pytest.approx(sklearn.f1_score(a, b, average="macro", zero_division=0))


def test_one_nearest_neighbour_baselines_by_hand(monkeypatch):
    from apptool_gesture.baselines import baseline_accuracies, nearest_dtw, nearest_euclidean

    t = np.linspace(0, 1, 40)
    bump = lambda centre, n=40: np.exp(-(((np.linspace(0, 1, n) - centre) / 0.08) ** 2))[:, None]  # noqa: E731
    train = [bump(0.3), bump(0.5, 20), np.sin(6 * t)[:, None]]
    # a bump at 0.5 over 60 frames: resampled to 40 it is exactly like the 20-frame one
    assert nearest_euclidean(train, [bump(0.5, 60), np.sin(6 * t)[:, None] + 0.1]).tolist() == [1, 2]
    # a bump shifted in time is farther from the same bump than from a flat line by Euclidean distance; DTW aligns it
    flat_or_bump = [np.zeros((40, 1)), bump(0.3)]
    assert nearest_euclidean(flat_or_bump, [bump(0.7)]).tolist() == [0]
    if importlib.util.find_spec("aeon") is not None:  # make test installs it; the DTW baseline is optional
        assert nearest_dtw(flat_or_bump, [bump(0.7)]).tolist() == [1]
    monkeypatch.setitem(sys.modules, "aeon.distances", None)  # as if aeon were not installed
    result = baseline_accuracies(train, np.array([0, 1, 2]), [bump(0.3), np.sin(6 * t)[:, None]], np.array([0, 2]))
    assert result["baseline_1nn_euclidean"] == 1.0 and result["baseline_1nn_dtw"] is None
    assert "aeon" in result["baseline_1nn_dtw_unavailable"]


# -- model and graphs -----------------------------------------------------------------------
def small_net(cell="lstm", bidirectional=False, conv=6, pool=True, fcn=((5, 7), (4, 3)), dropout=0.1, rocket=0):
    """A GestureNet of 4 features and 3 classes built by the task from a bundle-like config, batch-norm statistics
    and the MiniRocket head (``rocket`` features) set."""
    import torch

    torch.manual_seed(0)
    model = {"cell": cell, "hidden": 12, "layers": 2, "bidirectional": bidirectional, "dropout": dropout}
    model.update(conv_channels=conv, conv_kernel=3, pool=pool, fcn_channels=list(fcn[0]), fcn_kernels=list(fcn[1]))
    model.update(rocket_features=rocket)
    config = {"input": {"n_features": 4, "raw_dims": 4, "median_frames": 9}, "labels": ["a", "b", "c"], "model": model}
    net = GestureTask().build_model(config)
    if rocket:
        net.rocket.fit([np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)])
        torch.nn.init.normal_(net.rocket_weight)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm1d):  # not the identity a fresh one is, so eval mode is tested
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.normal_(module.weight)
            torch.nn.init.normal_(module.bias)
    return net, config


def packed_forward(net, x, lengths):
    """The network run on packed sequences, which never see their padding: what training and both graphs must equal."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    outputs, state = net.rnn(pack_padded_sequence(net.frontend(x), lengths, batch_first=True))
    h_n = state[0] if net.cell == "lstm" else state
    final = torch.cat([h_n[-2], h_n[-1]], 1) if net.bidirectional else h_n[-1]
    padded = pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])[0]
    return net.classify(x, lengths, net.readout(final, padded, lengths))


@pytest.mark.parametrize(
    "cell, bidirectional, conv, pool, fcn, rocket",
    [
        ("lstm", False, 6, False, ((), ()), 0),
        ("gru", False, 0, True, ((), ()), 0),
        ("lstm", False, 6, True, ((), ()), 0),
        ("lstm", False, 6, True, ((5, 7), (4, 3)), 0),
        ("gru", False, 0, False, ((5, 6, 7), (3, 1, 2)), 0),
        ("lstm", False, 0, False, ((), ()), 168),
        ("lstm", True, 6, True, ((5, 7), (4, 3)), 0),
        ("gru", True, 0, False, ((), ()), 168),
    ],
)
def test_training_path_and_export_graphs_compute_what_packing_computes(cell, bidirectional, conv, pool, fcn, rocket):
    """Training forward = offline graph = a packed run, and streaming frame by frame = offline, FCN and MiniRocket included."""
    import torch
    from apptool_gesture.model import OfflineGraph, StepGraph
    from apptool_gesture.streaming import state_shapes

    net, config = small_net(cell, bidirectional, conv, pool, fcn, rocket=rocket)
    net.eval()
    lengths = torch.tensor([11, 7, 2])
    x = torch.randn(3, 11, 4)
    for i, n in enumerate(lengths):
        x[i, n:] = 50.0  # whatever sits in the padding must not matter
    with torch.no_grad():
        packed = packed_forward(net, x, lengths)
        if rocket:
            network, packed = packed, net.mix(packed, net.rocket(x, lengths))
            assert not torch.allclose(packed, net.mix(network, net.rocket(x, lengths - 1)))  # the head reads the series
        torch.testing.assert_close(net(x, lengths), packed, atol=1e-5, rtol=0)
        torch.testing.assert_close(OfflineGraph(net)(x, lengths), packed, atol=1e-5, rtol=0)
        shapes = state_shapes(config, 3)
        if bidirectional:
            with pytest.raises(Exception, match="unidirectional"):
                StepGraph(net, list(shapes))
            return
        step = StepGraph(net, list(shapes))
        state = [torch.zeros(shape) for shape in shapes.values()]
        final = torch.zeros_like(packed)
        for t in range(11):
            logits, *state = step(x[:, t], *state)
            done = lengths - 1 == t
            final[done] = logits[done]
        torch.testing.assert_close(final, packed, atol=1e-5, rtol=0)


def test_fcn_batch_norm_learns_from_frames_inside_the_sequences_only():
    """In training, padding changes neither the output nor the running statistics batch norm keeps for export."""
    import torch

    outputs, stats = [], []
    for pad in (0.0, 50.0):
        net, _ = small_net(dropout=0.0)
        net.train()
        x = torch.randn(3, 11, 4, generator=torch.Generator().manual_seed(1))
        for i, n in enumerate([11, 7, 2]):
            x[i, n:] = pad
        outputs.append(net(x, torch.tensor([11, 7, 2])))
        stats.append(torch.cat([b.norm.running_mean for b in net.fcn.blocks] + [b.norm.running_var for b in net.fcn.blocks]))
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(stats[0], stats[1])


def test_bundles_from_before_the_fcn_build_without_it():
    from apptool_gesture.settings import model_options

    old = {"input": {"n_features": 4, "raw_dims": 4}, "labels": ["a", "b"], "model": {"hidden": 8, "layers": 1}}
    assert model_options(old)["fcn_channels"] == [] and model_options(old)["pool"] is False
    assert GestureTask().build_model(old).fcn is None


def test_collate_sorts_pads_and_keeps_labels():
    batch = GestureTask().collate([(np.ones((2, 4), np.float32), 1), (np.ones((5, 4), np.float32), 2)])
    x, lengths, labels = batch
    assert x.shape == (2, 5, 4) and lengths.tolist() == [5, 2] and labels.tolist() == [2, 1]
    assert float(x[1, 2:].abs().sum()) == 0.0


# -- drawn strokes ------------------------------------------------------------------------
def test_stroke_points_resample_in_time_and_map_to_the_unit_box():
    points = [[200, 200, 0, 0], [300, 200, 500, 0], [300, 100, 1000, 0]]  # right, then up, over one second
    array, width, height = parse_points(json.dumps({"width": 400, "height": 400, "points": points}))
    path = points_to_path(array, width, height, fps=50)
    assert len(path) == 51
    np.testing.assert_allclose(path[0], [0, 0], atol=1e-6)
    np.testing.assert_allclose(path[25], [0.25, 0], atol=1e-6)
    np.testing.assert_allclose(path[-1], [0.25, 0.25], atol=1e-6)  # canvas y down is up in the model


def test_pause_between_strokes_becomes_travel_at_the_drawing_speed():
    points = [[0, 0, 0, 0], [100, 0, 100, 0], [100, 100, 5000, 1], [0, 100, 5100, 1]]
    array, width, height = parse_points(json.dumps({"width": 100, "height": 100, "points": points}))
    assert len(points_to_path(array, width, height, fps=100)) == 31  # 0.3 s, not 5.1 s


@pytest.mark.parametrize("text", ["", "not json", json.dumps({"points": [[1, 2, 3]]}), json.dumps([["a", 1, 2]] * 3)])
def test_bad_strokes_are_input_errors(text):
    with pytest.raises(InputError):
        points_to_path(*parse_points(text), fps=50)


# -- end to end ----------------------------------------------------------------------------
def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``apptool ARGS`` in this process (no second torch import): exit code, stdout, stderr."""
    from apptool import cli

    monkeypatch.setattr(sys, "argv", ["apptool", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err


@pytest.fixture(scope="module")
def ts_bundle(tmp_path_factory):
    from apptool.engine import train

    task = GestureTask()
    data = write_ts_problem(tmp_path_factory.mktemp("toy"))
    config = task.config("tiny", {"train": {"epochs": 3}})
    return train(task, config, tmp_path_factory.mktemp("bundle"), data_dir=data, progress=False), data


def test_ts_bundle_has_streaming_graph_and_onnx_parity_at_several_lengths(ts_bundle):
    bundle, _ = ts_bundle
    config = json.loads((bundle / CONFIG).read_text())
    assert config["labels"] == ["rise", "fall", "wave"] and config["graphs"] == ["model", "step"]
    export = json.loads((bundle / METRICS).read_text())["export"]
    lengths = {shape.split("x[")[1].split("]")[0] for shape in export["parity_shapes"]["model"]}
    assert len(lengths) >= 3 and max(export["parity_max_abs_diff"].values()) < 1e-4
    assert (bundle / "confusion_matrix.png").stat().st_size > 0


def test_eval_json_on_ts_data_reports_metrics_and_streaming_agreement(ts_bundle, monkeypatch, capsys):
    bundle, data = ts_bundle
    code, out, err = run_cli(monkeypatch, capsys, "eval", str(bundle), "--data", str(data), "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert {"accuracy", "macro_f1", "streaming_agreement"} <= set(metrics) and metrics["test_samples"] == 9
    assert metrics["streaming_agreement"] == 1.0
    assert 0 <= metrics["baseline_1nn_euclidean"] <= 1
    if importlib.util.find_spec("aeon") is None:
        assert metrics["baseline_1nn_dtw"] is None and "aeon" in metrics["baseline_1nn_dtw_unavailable"]
    else:
        assert 0 <= metrics["baseline_1nn_dtw"] <= 1


def test_torch_and_onnx_predict_apply_the_same_preprocessing(ts_bundle):
    from apptool.bundle import load_state, read_config
    from apptool.onnx_export import TorchRunner
    from apptool.runtime import OnnxRunner

    bundle, data = ts_bundle
    task, config = GestureTask(), read_config(bundle)
    model = task.build_model(config)
    model.load_state_dict(load_state(bundle / WEIGHTS)[0])
    raw = read_ts(data / "Toy_TEST.ts").series
    on_torch = task.predict(TorchRunner(task.graphs(model.eval(), config)), raw, config)
    on_onnx = task.predict(OnnxRunner(bundle, "gesture", config["graphs"]), raw, config)
    for a, b in zip(on_torch, on_onnx):
        assert a["label"] == b["label"]
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-5)


def test_predict_reads_every_case_of_a_ts_file(ts_bundle, monkeypatch, capsys):
    bundle, data = ts_bundle
    code, out, err = run_cli(monkeypatch, capsys, "predict", str(bundle), str(data / "Toy_TEST.ts"), "--json")
    assert code == 0, err
    predictions = json.loads(out)["predictions"]
    assert len(predictions) == 9 and predictions[0]["result"]["label"] in ("rise", "fall", "wave")


def test_bidirectional_model_exports_offline_only_and_says_streaming_is_unavailable(tmp_path):
    from apptool.engine import train

    task = GestureTask()
    config = task.config("tiny", {"model": {"bidirectional": True}, "train": {"epochs": 1}})
    bundle = train(task, config, tmp_path / "bi", data_dir=write_ts_problem(tmp_path / "toy"), progress=False)
    saved = json.loads((bundle / CONFIG).read_text())
    test = json.loads((bundle / METRICS).read_text())["test"]
    assert saved["graphs"] == ["model"] and test["streaming_agreement"] is None and "bidirectional" in test["streaming"]


def test_malformed_training_file_fails_with_its_line_number(tmp_path, monkeypatch, capsys):
    data = write_ts_problem(tmp_path / "toy")
    train_file = data / "Toy_TRAIN.ts"
    lines = train_file.read_text().splitlines()
    lines[12] = lines[12].replace(",", ",abc,", 1)
    train_file.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(
        monkeypatch, capsys, "train", "gesture", "--preset", "tiny", "--data", str(data), "--out", str(tmp_path / "b"), "--quiet"
    )
    assert code == 2 and "Toy_TRAIN.ts:13" in err and "abc" in err


def test_demo_analysis_of_a_drawing_gives_probabilities_and_streaming_curves():
    from types import SimpleNamespace

    from apptool_gesture.demo import analyse
    from apptool_gesture.stroke import stroke_to_sequence

    from apptool.onnx_export import TorchRunner

    task = GestureTask()
    config = task.config("tiny")
    config.update(
        labels=list(GESTURES),
        input=fit_input_spec([make_gesture("circle", np.random.default_rng(0), CLEAN)], "pen", 50),
        dataset={"format": "generator", "kind": "pen"},
    )
    runner = TorchRunner(task.graphs(task.build_model(config), config))
    ctx = SimpleNamespace(
        config=config, predictor=SimpleNamespace(runner=runner, predict=lambda items: task.predict(runner, items, config))
    )
    angle = np.linspace(0, 2 * np.pi, 40)
    points = [[200 + 90 * np.cos(a), 200 - 90 * np.sin(a), 20.0 * i, 0] for i, a in enumerate(angle)]
    seq, path = stroke_to_sequence(json.dumps({"width": 400, "height": 400, "points": points}), config)
    probabilities, curves, picture, note = analyse(ctx, seq, path, "the drawing")
    assert set(probabilities) == set(GESTURES) and sum(probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert curves.ndim == 3 and curves.shape[2] == 3 and picture.shape[2] == 3 and "frames" in note


def test_augmentation_is_a_seeded_window_of_the_input_with_gain_and_noise():
    from apptool_gesture.augment import Augment

    x = np.arange(2000, dtype=np.float32).reshape(1000, 2)
    augment = Augment({"window": 0.5, "max_frames": 300, "scale": 0.0, "noise": 0.0}, seed=3)
    first = augment(x, 7)
    assert 1 <= len(first) <= 300 and np.array_equal(augment(x, 7), first)
    start = int(first[0, 0]) // 2
    assert np.array_equal(first, x[start : start + len(first)])  # a contiguous window, no gain, no noise
    augment.set_epoch(1)
    assert not np.array_equal(augment(x, 7), first)
    whole = Augment({"window": 1.0, "max_frames": 0, "scale": 0.2, "noise": 0.0}, seed=3)(x[:50], 0)
    gain = whole / np.where(x[:50] == 0, 1, x[:50])
    assert len(whole) == 50 and np.allclose(gain[1:], gain[1]) and np.all(np.abs(gain[1] - 1) <= 0.2)


def test_only_the_training_split_is_augmented(tmp_path):
    config = GestureTask().config("tiny")
    train, test, _ = load_splits(config, None)
    assert train.augment is not None and test.augment is None
    assert np.array_equal(test[0][0], test.transform(test.sequences[0]))
