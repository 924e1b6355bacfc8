"""Backbones: every local weight source, the errors for missing or wrong weights, plugin backbones, never a download."""

from __future__ import annotations

import json
import types

import pytest
import torch

import apptool
from apptool.backbones import DEFAULT_BACKBONE, create_encoder, hf_cached_weights, list_backbones, resolve_weights
from apptool.bundle import save_state
from apptool.errors import ConfigError

NAME = "resnet10t"


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    """Any attempt to reach a hub fails the test; the HF cache and weights dir point at empty folders."""
    import timm.models._builder as builder

    def refuse(*args, **kwargs):
        raise AssertionError("a backbone tried to download weights")

    for name in ("load_state_dict_from_hf", "load_state_dict_from_url", "download_cached_file", "load_custom_from_hf"):
        monkeypatch.setattr(builder, name, refuse, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.delenv("APPTOOL_WEIGHTS_DIR", raising=False)


@pytest.fixture(scope="module")
def timm_weights(tmp_path_factory):
    """A timm classifier's state dict (another head size than ImageNet's) saved as safetensors."""
    import timm

    torch.manual_seed(1)
    model = timm.create_model(NAME, num_classes=7)
    path = tmp_path_factory.mktemp("weights") / f"{NAME}.safetensors"
    save_state(path, model.state_dict())
    return path, model.state_dict()


def _same(encoder, state, key="layer3.0.conv1.weight"):
    return torch.equal(encoder.state_dict()[key], state[key])


def test_random_init_is_stated_and_describes_its_features():
    encoder = create_encoder(NAME)
    assert encoder.pretrained_source == "random init"
    assert encoder.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert encoder.feature_info.channels() == [64, 64, 128, 256, 512]
    assert DEFAULT_BACKBONE in list_backbones("resnet1*")


def test_a_safetensors_file_loads_and_adapts_to_one_input_channel(timm_weights):
    path, state = timm_weights
    encoder = create_encoder(NAME, path)
    assert encoder.pretrained_source == str(path) and _same(encoder, state)
    grey = create_encoder(NAME, str(path), in_chans=1)
    assert grey.state_dict()["conv1.0.weight"].shape[1] == 1 and _same(grey, state)


def test_a_weights_directory_and_auto_use_files_named_after_the_model(timm_weights, monkeypatch):
    path, state = timm_weights
    assert resolve_weights(NAME, path.parent) == path
    assert resolve_weights(f"{NAME}.c3_in1k", path.parent) == path  # a tagged name falls back to the architecture
    monkeypatch.setenv("APPTOOL_WEIGHTS_DIR", str(path.parent))
    assert _same(create_encoder(NAME, "auto"), state)


def test_the_local_hugging_face_cache_is_read_offline(timm_weights, tmp_path, monkeypatch):
    path, state = timm_weights
    repo = tmp_path / "hub" / "models--timm--resnet10t.c3_in1k"
    (repo / "snapshots" / "0123abc").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    (repo / "snapshots" / "0123abc" / "model.safetensors").write_bytes(path.read_bytes())
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert hf_cached_weights(NAME) == repo / "snapshots" / "0123abc" / "model.safetensors"
    assert _same(create_encoder(NAME, "hf"), state) and _same(create_encoder(NAME, "auto"), state)


def test_backbone_and_task_bundles_are_accepted_for_their_own_backbone(timm_weights, tmp_path):
    path, state = timm_weights
    backbone = tmp_path / "backbone"
    backbone.mkdir()
    (backbone / "weights.safetensors").write_bytes(path.read_bytes())
    (backbone / "config.json").write_text(json.dumps({"kind": "backbone", "backbone": NAME}))
    assert _same(create_encoder(NAME, backbone), state)
    with pytest.raises(ConfigError, match="holds a 'resnet10t' backbone, not 'resnet18'"):
        create_encoder("resnet18", backbone)

    task_bundle = tmp_path / "task"
    task_bundle.mkdir()
    encoder = create_encoder(NAME, path)
    save_state(
        task_bundle / "weights.safetensors",
        {**{f"encoder.{k}": v for k, v in encoder.state_dict().items()}, "head.weight": torch.zeros(2)},
    )
    (task_bundle / "config.json").write_text(json.dumps({"task": "x", "graphs": ["model"], "model": {"backbone": NAME}}))
    assert _same(create_encoder(NAME, task_bundle), state)


@pytest.mark.parametrize(
    "pretrained, message",
    [
        ("missing.safetensors", "pretrained weights not found"),
        ("auto", "nothing is downloaded"),
        ("hf", "no local weights for backbone 'resnet10t' in the Hugging Face cache"),
    ],
)
def test_missing_weights_are_a_config_error_never_a_random_init(pretrained, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        create_encoder(NAME, pretrained)


def test_pickle_files_are_refused_without_being_read(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not read")
    with pytest.raises(ConfigError, match="must be .safetensors"):
        create_encoder(NAME, path)


def test_weights_of_another_model_are_a_config_error(tmp_path):
    import timm

    path = tmp_path / "other.safetensors"
    save_state(path, timm.create_model("mobilenetv3_small_050").state_dict())
    with pytest.raises(ConfigError, match="do not fit backbone 'resnet10t'"):
        create_encoder(NAME, path)
    unrelated = tmp_path / "unrelated.safetensors"
    save_state(unrelated, {"something.else": torch.zeros(3)})
    with pytest.raises(ConfigError, match="only 0 of .* encoder tensors"):
        create_encoder(NAME, unrelated)


@pytest.mark.parametrize("name", ["no_such_model_x", "hf-hub:timm/resnet10t.c3_in1k"])
def test_bad_backbone_names_are_config_errors(name):
    with pytest.raises(ConfigError):
        create_encoder(name)


def test_plugin_backbones_from_the_hook_are_creatable(timm_weights):
    from apptool.plugins import get_plugins

    plugin = types.ModuleType("extra_backbones")
    plugin.apptool_backbones = apptool.hookimpl(lambda: {"narrow_resnet": {"model_name": NAME, "drop_rate": 0.1}})
    plugins = get_plugins()
    plugins.register(plugin, "test-extra-backbones")
    try:
        assert "narrow_resnet" in list_backbones()
        encoder = create_encoder("narrow_resnet")
        assert encoder.feature_info.channels() == [64, 64, 128, 256, 512]
        path, state = timm_weights
        assert _same(create_encoder("narrow_resnet", path), state)
    finally:
        plugins.pm.unregister(name="test-extra-backbones")
        plugins.infos.pop("test-extra-backbones", None)


@pytest.mark.parametrize("name", ["resnet10t", "mobilenetv3_small_050", "efficientnet_lite0"])
def test_small_encoders_round_trip_through_a_weight_file(name, tmp_path):
    """The encoder conformance every default-sized backbone meets: features, strides, and a weight round trip."""
    encoder = create_encoder(name).eval()
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == encoder.feature_info.channels()
    assert [64 // f.shape[-1] for f in features] == encoder.feature_info.reduction()
    path = tmp_path / f"{name}.safetensors"
    save_state(path, encoder.state_dict())
    again = create_encoder(name, path)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
