"""Scene labeling: generator, readers (both layouts, their quirks and errors), metrics, loss, model, end to end."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from apptool_scene_labeling.data import (
    SceneSet,
    detect_layout,
    fit_size,
    in_test_split,
    read_data_dir,
    read_regions,
    read_stanford,
)
from apptool_scene_labeling.metrics import confusion, scores
from apptool_scene_labeling.scenes import CLASSES, GRASS, IGNORE, ROAD, SKY, WATER, scene
from apptool_scene_labeling.task import SceneLabelingTask, decode_mask

from apptool.bundle import CONFIG, METRICS, WEIGHTS
from apptool.errors import DataError


# -- generator ---------------------------------------------------------------------------
def test_generator_is_deterministic_by_seed_split_and_index():
    a, b = scene(3, 0, 5, 64, 96), scene(3, 0, 5, 64, 96)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == (64, 96, 3) and a[0].dtype == np.uint8 and a[1].shape == (64, 96)
    assert not np.array_equal(scene(3, 1, 5, 64, 96)[0], a[0])  # the test stream is another stream
    assert not np.array_equal(scene(4, 0, 5, 64, 96)[0], a[0])


def test_generator_labels_follow_the_scene_layout():
    """The horizon lies between 30 % and 62 % of the height: no sky below it, no ground above it."""
    seen = np.zeros(len(CLASSES), bool)
    for index in range(30):
        _, mask = scene(0, 0, index, 100, 100)
        assert set(np.unique(mask)) <= set(range(len(CLASSES)))
        rows = np.nonzero(mask == SKY)[0]
        assert rows.size == 0 or rows.max() < 62
        for ground in (GRASS, ROAD, WATER):
            rows = np.nonzero(mask == ground)[0]
            assert rows.size == 0 or rows.min() >= 30
        seen[np.unique(mask)] = True
    assert seen.all(), f"classes never generated: {[c for c, s in zip(CLASSES, seen) if not s]}"


def test_generator_masks_are_exact_where_a_flat_shape_is_painted():
    from apptool_scene_labeling.scenes import FOREGROUND, Canvas

    canvas = Canvas(40, 40)
    area = canvas.region([[[10, 10], [30, 10], [30, 30], [10, 30]]])
    canvas.paint(area, np.array([1.0, 0.0, 0.0], np.float32), FOREGROUND)
    assert (canvas.mask == FOREGROUND).sum() == area.sum() == 21 * 21
    assert np.all(canvas.image[canvas.mask == FOREGROUND] == [1, 0, 0])


def test_training_view_pads_with_ignore_and_keeps_the_aspect():
    image = np.zeros((48, 96, 3), np.uint8)
    mask = np.ones((48, 96), np.uint8)
    x, y = SceneSet([(image, mask, "a")], long_side=64)[0]
    assert fit_size(48, 96, 64) == (32, 64)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert (y[:32] == 1).all() and (y[32:] == IGNORE).all()


# -- images/masks layout ------------------------------------------------------------------
def _write_layout(root, n_train=3, n_test=2, size=(48, 64)):
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("# outdoor\nsky\n\ntree \nroad\ngrass\nwater\nbuilding\nmountain\nforeground\n")
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(n):
            image, mask = scene(1, 0 if split == "train" else 1, i, *size)
            mask = mask.copy()
            mask[0, :4] = IGNORE
            cv2.imwrite(str(root / split / "images" / f"img{i}.jpg"), image[:, :, ::-1])
            cv2.imwrite(str(root / split / "masks" / f"img{i}.png"), mask)
    return root


def test_images_masks_layout_reads_grey_palette_and_rgb_masks(tmp_path):
    from PIL import Image

    root = _write_layout(tmp_path / "data")
    mask = cv2.imread(str(root / "train" / "masks" / "img1.png"), cv2.IMREAD_UNCHANGED)
    palette_png = Image.fromarray(mask, mode="L").convert("P")
    palette_png.save(root / "train" / "masks" / "img1.png")
    cv2.imwrite(str(root / "train" / "masks" / "img2.png"), np.dstack([mask] * 3))
    classes, train, test, layout = read_data_dir(root)
    assert layout == "images-masks" and classes == list(CLASSES)
    assert len(train) == 3 and len(test) == 2
    for _, labels, _ in train:
        assert labels[0, 0] == IGNORE
    assert np.array_equal(train[1][1], mask) and np.array_equal(train[2][1], mask)


def test_unknown_class_index_names_the_mask(tmp_path):
    root = _write_layout(tmp_path / "data")
    (root / "classes.txt").write_text("sky\ntree\nroad\n")
    with pytest.raises(DataError, match=r"img0\.png: unknown class indices"):
        read_data_dir(root)


def test_mask_of_another_size_names_the_mask(tmp_path):
    root = _write_layout(tmp_path / "data")
    cv2.imwrite(str(root / "test" / "masks" / "img1.png"), np.zeros((10, 12), np.uint8))
    with pytest.raises(DataError, match=r"test/masks/img1\.png: mask is 12x10 but its image img1\.jpg is 64x48"):
        read_data_dir(root)


@pytest.mark.parametrize(
    "problem, message",
    [
        ("missing_mask", r"img0\.jpg: no mask"),
        ("colour_mask", r"img0\.png: mask is a colour"),
        ("no_classes", r"classes\.txt: missing"),
        ("duplicate_class", r"classes\.txt, line 2: class 'sky' is listed twice"),
        ("orphan_mask", r"extra\.png: mask has no image"),
    ],
)
def test_malformed_layouts_give_data_errors(tmp_path, problem, message):
    root = _write_layout(tmp_path / "data")
    masks = root / "train" / "masks"
    if problem == "missing_mask":
        (masks / "img0.png").unlink()
    elif problem == "colour_mask":
        cv2.imwrite(
            str(masks / "img0.png"),
            np.dstack([np.zeros((48, 64), np.uint8), np.ones((48, 64), np.uint8), np.zeros((48, 64), np.uint8)]),
        )
    elif problem == "no_classes":
        (root / "classes.txt").unlink()
    elif problem == "duplicate_class":
        (root / "classes.txt").write_text("sky\nsky\n")
    else:
        cv2.imwrite(str(masks / "extra.png"), np.zeros((48, 64), np.uint8))
    with pytest.raises(DataError, match=message):
        read_data_dir(root)


# -- Stanford Background layout ------------------------------------------------------------
def _write_stanford(root, n=6, size=(12, 16)):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for i in range(n):
        image, mask = scene(2, 0, i, *size)
        labels = mask.astype(np.int64)
        labels[0, :3] = -1
        cv2.imwrite(str(root / "images" / f"{i:07d}.jpg"), image[:, :, ::-1])
        lines = ["  " + "   ".join(str(v) for v in row) + " " for row in labels]  # stray spaces, as in the original files
        (root / "labels" / f"{i:07d}.regions.txt").write_text("\n".join(lines) + "\n\n")
        (root / "labels" / f"{i:07d}.surfaces.txt").write_text("ignored\n")
    return root


def test_stanford_layout_reads_with_unknown_as_ignore_and_a_stable_split(tmp_path):
    root = _write_stanford(tmp_path / "sbd")
    assert detect_layout(root) == "stanford-background"
    train, test = read_stanford(root)
    assert len(train) + len(test) == 6 and test
    assert all(mask[0, :3].tolist() == [IGNORE] * 3 for _, mask, _ in train + test)
    assert {name for *_, name in test} == {name for *_, name in read_stanford(root)[1]}
    assert in_test_split("0000047") == in_test_split("0000047")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: rows[:3] + ["0 1 x"] + rows[4:], r"line 4: 'x' is not an integer"),
        (lambda rows: rows[:2] + [rows[2] + " 3"] + rows[3:], r"line 3: 17 values, but line 1 has 16"),
        (lambda rows: rows[:-1], r"11 rows x 16 columns, but the image is 12 x 16"),
        (lambda rows: rows[:5] + ["9" + rows[5][1:]] + rows[6:], r"line 6: unknown class 9"),
    ],
)
def test_malformed_regions_files_name_file_and_line(tmp_path, edit, message):
    path = tmp_path / "a.regions.txt"
    rows = [" ".join(["0"] * 16) for _ in range(12)]
    path.write_text("\n".join(edit(rows)))
    with pytest.raises(DataError, match=message) as caught:
        read_regions(path, (12, 16))
    assert "a.regions.txt" in str(caught.value)


# -- metrics and loss --------------------------------------------------------------------------
def test_fcn_metrics_against_hand_computed_values():
    truth = np.array([[0, 0], [1, IGNORE]])
    pred = np.array([[0, 1], [1, 0]])
    matrix = confusion(truth, pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    result = scores(matrix, ["a", "b", "c"])
    assert result["pixel_acc"] == pytest.approx(2 / 3)
    assert result["class_acc"] == pytest.approx((1 / 2 + 1) / 2)  # class c is absent from the truth: left out
    assert result["miou"] == pytest.approx((1 / 2 + 1 / 2) / 2)  # IoU a = 1/(2+1-1), b = 1/(1+2-1); c undefined
    assert result["per_class_iou"] == {"a": 0.5, "b": 0.5, "c": None}


def test_a_class_predicted_but_absent_from_the_truth_counts_zero_iou():
    result = scores(confusion(np.array([0, 0]), np.array([0, 1]), 2), ["a", "b"])
    assert result["per_class_iou"] == {"a": 0.5, "b": 0.0} and result["miou"] == pytest.approx(0.25)


def test_balanced_loss_weighs_each_present_class_equally():
    import torch
    import torch.nn.functional as F
    from apptool_scene_labeling.model import segmentation_loss

    logits = torch.randn(1, 3, 2, 3)
    target = torch.tensor([[[0, 0, 0], [0, 1, IGNORE]]])
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")[0]
    expected = (per_pixel[target[0] == 0].mean() + per_pixel[target[0] == 1].mean()) / 2
    assert segmentation_loss(logits, target, balanced=True).item() == pytest.approx(expected.item(), rel=1e-6)
    assert segmentation_loss(logits, target, balanced=False).item() == pytest.approx(
        per_pixel[target[0] != IGNORE].mean().item(), rel=1e-6
    )


def test_an_unknown_loss_is_refused_by_the_config_check_naming_the_key():
    from apptool.config import check_config
    from apptool.errors import ConfigError

    task = SceneLabelingTask()
    config = task.config("tiny", {"model": {"loss": "focal"}})
    with pytest.raises(ConfigError, match=r"model\.loss = 'focal'.*'ce', 'balanced'"):
        check_config(task, config)
    config["model"]["loss"] = "balanced"
    assert check_config(task, config) is config


# -- model -----------------------------------------------------------------------------------
def test_model_takes_any_multiple_of_32_and_exposes_its_encoder():
    import torch

    task = SceneLabelingTask()
    model = task.build_model(task.config("tiny")).eval()
    assert hasattr(model, "encoder") and model.encoder.pretrained_source == "random init"
    with torch.no_grad():
        for shape in ((1, 3, 64, 64), (3, 3, 32, 96)):
            assert model(torch.rand(*shape) * 255).shape == (shape[0], 8, *shape[2:])


def test_model_loads_a_pretrained_backbone_bundle(tmp_path):
    import timm
    import torch

    from apptool.bundle import save_state

    source = timm.create_model("resnet10t", num_classes=5)
    save_state(tmp_path / WEIGHTS, source.state_dict())
    (tmp_path / CONFIG).write_text(json.dumps({"kind": "backbone", "backbone": "resnet10t"}))
    task = SceneLabelingTask()
    model = task.build_model(task.config("tiny", {"model": {"pretrained": str(tmp_path)}}))
    assert torch.equal(model.encoder.state_dict()["layer2.0.conv1.weight"], source.state_dict()["layer2.0.conv1.weight"])


# -- end to end on the images/masks layout ----------------------------------------------------------
def test_train_eval_predict_on_an_images_masks_folder(tmp_path):
    from apptool.engine import train
    from apptool.evaluation import evaluate_bundle
    from apptool.runtime import Predictor

    data = _write_layout(tmp_path / "data", n_train=6, n_test=2, size=(48, 64))
    task = SceneLabelingTask()
    bundle = train(task, task.config("tiny"), tmp_path / "bundle", data_dir=data, progress=False)
    metrics = json.loads((bundle / METRICS).read_text())
    assert metrics["export"]["parity_shapes"]["model"] == ["image[1, 3, 64, 64]", "image[3, 3, 32, 96]"]
    assert (bundle / "confusion_matrix.png").is_file()
    result = evaluate_bundle(bundle, data)
    assert {"pixel_acc", "class_acc", "miou", "per_class_iou"} <= set(result)
    assert 0 <= result["miou"] <= result["pixel_acc"] + 1e-9 <= 1 + 1e-9 and result["n_images"] == 2
    image = scene(9, 1, 0, 50, 70)[0]
    predictor = Predictor(bundle)
    prediction = predictor.predict([image])[0]
    assert decode_mask(prediction).shape == (50, 70)
    assert sum(prediction["area"].values()) == pytest.approx(1.0, abs=1e-3)
    drawn = task.render(image, prediction, predictor.config)
    assert drawn.shape[0] >= 50 and drawn.shape[1] > 70 and drawn.dtype == np.uint8


# -- ImageNet encoder -----------------------------------------------------------------------------
def test_imagenet_encoder_stores_its_normalisation_and_the_onnx_graph_applies_it(tmp_path):
    """``--backbone efficientnet_lite0 --pretrained imagenet``: mean/std 0.5 in the config, inside the exported graph."""
    import torch

    from apptool.onnx_export import export_onnx
    from apptool.runtime import OnnxRunner

    task = SceneLabelingTask()
    config = task.config("tiny", {"model": {"backbone": "efficientnet_lite0", "pretrained": "imagenet"}})
    assert config["model"]["mean"] == [0.5, 0.5, 0.5] and config["model"]["std"] == [0.5, 0.5, 0.5]
    model = task.build_model(config).eval()
    assert torch.allclose(model.mean, torch.tensor(127.5)) and torch.allclose(model.std, torch.tensor(127.5))
    report = export_onnx(task, model, config, tmp_path)
    assert max(report["parity_max_abs_diff"].values()) <= 1e-4
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    onnx_logits = OnnxRunner(tmp_path, task.name, config["graphs"]).run("model", {"image": image})["logits"]
    legacy = {k: v for k, v in config["model"].items() if k not in ("mean", "std")}  # a bundle made before the keys
    old = task.build_model({**config, "model": legacy}).eval()
    old.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(image)).numpy() - onnx_logits).max() <= 1e-4
        assert torch.allclose(old.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]) * 255)
        assert np.abs(old(torch.from_numpy(image)).numpy() - onnx_logits).max() > 1e-2  # the stats do reach the graph
