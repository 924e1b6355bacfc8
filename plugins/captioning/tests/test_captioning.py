"""Captioning: generator, tokenisation, COCO/Flickr8k readers, metrics, beam search, and train -> eval end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from apptool_captioning import scenes
from apptool_captioning.data import load_splits
from apptool_captioning.decoding import beam_search
from apptool_captioning.metrics import cider_d, corpus_bleu
from apptool_captioning.readers import read_coco, read_flickr8k
from apptool_captioning.text import END_ID, START_ID, build_vocab, encode, tokenize

from apptool.bundle import CONFIG
from apptool.errors import DataError


@pytest.fixture(scope="module")
def task():
    from apptool.plugins import get_plugins

    return get_plugins().task("captioning")


# -- tokenisation and vocabulary ------------------------------------------------------
def test_tokenize_lowercases_strips_punctuation_and_whitespace():
    assert tokenize("  A Man's red HAT, on a table.\n") == ["a", "mans", "red", "hat", "on", "a", "table"]
    assert tokenize("two-tone\tbus!!") == ["two", "tone", "bus"]
    assert tokenize(" .\n") == []


def test_vocab_has_specials_first_then_words_by_frequency_above_threshold():
    vocab = build_vocab([["a", "dog"], ["a", "cat"], ["a", "dog", "runs"]], min_freq=2)
    assert vocab == ["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]
    index = {w: i for i, w in enumerate(vocab)}
    assert encode(["a", "cat", "dog"], index, max_len=2).tolist() == [START_ID, 4, 3, END_ID]
    assert encode(["dog"], index, max_len=3).tolist() == [START_ID, 5, END_ID, 0, 0]


# -- the generator ----------------------------------------------------------------------
def test_generator_is_deterministic_by_seed():
    a, b, c = scenes.make_scenes(6, (3, 0)), scenes.make_scenes(6, (3, 0)), scenes.make_scenes(6, (4, 0))
    assert all(np.array_equal(x.image, y.image) and x.captions == y.captions for x, y in zip(a, b))
    assert not all(np.array_equal(x.image, y.image) for x, y in zip(a, c))


def test_generator_labels_are_right():
    grammar = set(scenes.grammar_words())
    for scene in scenes.make_scenes(40, 11, size=64):
        a, b = scene.things[:2]
        assert scene.relation == scenes.relation_of(a, b)
        dx, dy = a.x - b.x, a.y - b.y
        if scene.relation in ("left", "right"):
            assert abs(dx) > 2 * abs(dy) and (dx < 0) == (scene.relation == "left")
        else:
            assert abs(dy) > 2 * abs(dx) and (dy < 0) == (scene.relation == "above")
        for thing in scene.things:  # the object's colour is drawn where the object is
            centre = scene.image[int(round(thing.y)), int(round(thing.x))].astype(int)
            assert np.abs(centre - np.array(scenes.COLOURS[thing.colour])).max() < 40, (thing, centre)
        assert len(scene.captions) == 5 and len(set(scene.captions)) == 5
        for caption in scene.captions:
            words = tokenize(caption)
            assert set(words) <= grammar
            for thing in scene.things:
                assert set(words) & set(scenes.COLOUR_WORDS[thing.colour])
                assert set(words) & set(scenes.SHAPE_WORDS[thing.shape])
            phrases = [p for rel in (scene.relation, scenes.INVERSE[scene.relation]) for p in scenes.RELATION_WORDS[rel]]
            assert any(f" {p} " in caption for p in phrases)


def test_generated_train_and_test_splits_are_disjoint(task):
    config = task.config("tiny")
    train, test, info = load_splits(config, None)
    seen = {train.image(i).tobytes() for i in range(len(train))}
    assert not any(test.image(i).tobytes() in seen for i in range(len(test)))
    assert info["vocab"][:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    image, captions = train[0]
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert captions.shape == (5, 22) and (captions[:, 0] == START_ID).all()


# -- COCO captions ------------------------------------------------------------------------
def write_coco(root: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> Path:
    """A COCO-captions folder with real-world quirks, from generated scenes."""
    quirks = ["  {}  ", "{}.", "{}\n", "{} .", "{}"]
    for split, n, stream in (("train", n_train, 0), ("test", n_test, 1)):
        doc = {
            "info": {"description": "test", "year": 2014},
            "licenses": [{"id": 1, "name": "x"}],
            "images": [],
            "annotations": [],
        }
        for i, scene in enumerate(scenes.make_scenes(n, (seed, stream))):
            image_id = 1000 * (stream + 1) + i
            name = f"{split}2014/COCO_{split}2014_{image_id:012d}.jpg"
            (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / name), scene.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            doc["images"].append(
                {"id": image_id, "file_name": name, "height": 64, "width": 64, "license": 1, "coco_url": "http://x"}
            )
            for k, caption in enumerate(scene.captions):
                text = quirks[k % len(quirks)].format(caption.capitalize() if k % 2 else caption.upper())
                doc["annotations"].append({"id": 10 * image_id + k, "image_id": image_id, "caption": text})
        doc["images"].append({"id": 99999, "file_name": "no_captions.jpg", "height": 1, "width": 1})  # listed, never captioned
        (root / f"captions_{split}.json").write_text(json.dumps(doc, indent=1))
    return root


def test_coco_reader_handles_real_world_quirks(tmp_path, task):
    write_coco(tmp_path, 6, 3)
    items = read_coco(tmp_path, "train")
    assert len(items) == 6  # the image without captions is skipped (its file does not even exist)
    path, captions = items[0]
    assert path == tmp_path / "images" / "train2014" / "COCO_train2014_000000001000.jpg" and len(captions) == 5
    config = task.config("tiny", {"data": {"min_word_freq": 2}})
    train, test, info = load_splits(config, tmp_path)
    assert (len(train), len(test), info["caption_format"]) == (6, 3, "coco")
    first = scenes.make_scenes(1, (0, 0))[0]
    assert train.references[0] == [tokenize(c) for c in first.captions]  # spaces, newlines, periods, case: gone
    assert train.image(0).shape == (64, 64, 3)
    words = {w for refs in train.references for r in refs for w in r}
    counts = {w: sum(r.count(w) for refs in train.references for r in refs) for w in words}
    assert set(info["vocab"][4:]) == {w for w, n in counts.items() if n >= 2}


def _coco_doc(images, annotations):
    return {"images": images, "annotations": annotations}


@pytest.mark.parametrize(
    "doc, message",
    [
        ('{"images": [', "not valid JSON (line 1"),
        (
            _coco_doc([{"id": 1, "file_name": "a.png"}], [{"image_id": 1, "caption": 7}]),
            "annotations[0].caption: expected str, got int",
        ),
        (
            _coco_doc([{"id": 1, "file_name": "a.png"}], [{"image_id": 1, "caption": "ok"}, {"caption": "x"}]),
            "annotations[1]: missing 'image_id'",
        ),
        (
            _coco_doc([{"id": 1, "file_name": "a.png"}], [{"image_id": 2, "caption": "x"}]),
            "annotations[0].image_id: 2 is not the id",
        ),
        (
            _coco_doc([{"id": 1, "file_name": "a.png"}], [{"image_id": 1, "caption": None}]),
            "annotations[0].caption: expected str, got NoneType",
        ),
        (_coco_doc([{"id": 1}], []), "images[0]: missing 'file_name'"),
        (
            _coco_doc([{"id": 1, "file_name": "../../etc/passwd"}], []),
            "images[0]: path '../../etc/passwd' leaves the data folder",
        ),
        (_coco_doc([{"id": 1, "file_name": "/etc/passwd"}], []), "leaves the data folder"),
        (_coco_doc([{"id": 1, "file_name": "gone.png"}], [{"image_id": 1, "caption": "x"}]), "images[0] (id 1): image file"),
        ({"images": {}, "annotations": []}, "field 'images' must be a list"),
        ([], "expected a JSON object"),
    ],
)
def test_coco_reader_errors_name_the_file_and_field(tmp_path, doc, message):
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "captions_train.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(DataError) as caught:
        read_coco(tmp_path, "train")
    assert "captions_train.json" in str(caught.value) and message in str(caught.value)


def test_coco_folder_without_test_file_is_a_clear_error(tmp_path, task):
    write_coco(tmp_path, 2, 1)
    (tmp_path / "captions_test.json").unlink()
    with pytest.raises(DataError, match="captions_test.json: missing"):
        load_splits(task.config("tiny"), tmp_path)
    with pytest.raises(DataError, match="not a captioning data folder"):
        load_splits(task.config("tiny"), tmp_path / "images")


# -- Flickr8k ------------------------------------------------------------------------------
def test_flickr8k_token_file_with_and_without_split_lists(tmp_path, task):
    folder = tmp_path / "Flicker8k_Dataset"
    folder.mkdir()
    names = [f"{i}_abc.jpg" for i in range(6)]
    for name in names:
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 128, np.uint8))
    lines = [f"{n}#{k}\tA dog runs {k} .  " for n in names for k in range(2)] + ["", "1_abc.jpg.1#0\tstray entry"]
    (tmp_path / "Flickr8k.token.txt").write_text("\r\n".join(lines) + "\r\n")
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("\n".join(names[:4]) + "\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("\n".join(names[4:]) + "\n")
    splits = read_flickr8k(tmp_path)
    assert [p.name for p, _ in splits["train"]] == names[:4] and [p.name for p, _ in splits["test"]] == names[4:]
    assert splits["train"][0][1] == ["A dog runs 0 .  ", "A dog runs 1 .  "]
    train, test, info = load_splits(task.config("tiny"), tmp_path)
    assert (len(train), len(test), info["caption_format"]) == (4, 2, "flickr8k")
    assert train.references[0] == [["a", "dog", "runs", "0"], ["a", "dog", "runs", "1"]] and train.image(0).shape == (64, 64, 3)
    (tmp_path / "Flickr_8k.trainImages.txt").unlink()
    (folder / "1_abc.jpg.1").write_bytes(b"")  # without split lists every listed image must exist
    splits = read_flickr8k(tmp_path)
    assert len(splits["test"]) == 1 and len(splits["train"]) == 6


def test_flickr8k_line_without_tab_names_file_and_line(tmp_path):
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tfine\n\na.jpg#1 no tab here\n")
    with pytest.raises(DataError, match=r"Flickr8k.token.txt:3: expected 'image.jpg#N<TAB>caption'"):
        read_flickr8k(tmp_path)


# -- metrics against hand-computed values ------------------------------------------------------
def test_corpus_bleu_matches_hand_computed_values():
    scores = corpus_bleu([["a", "b", "c", "d"]], [[["a", "b", "c", "e"]]])
    assert scores["bleu1"] == pytest.approx(3 / 4)
    assert scores["bleu2"] == pytest.approx(math.sqrt(3 / 4 * 2 / 3))
    assert scores["bleu3"] == pytest.approx((3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3))
    assert scores["bleu4"] == 0.0  # no matching 4-gram, no smoothing
    # brevity penalty against the closest reference length (4, not 1); unequal reference counts per image
    scores = corpus_bleu([["a", "b", "c"], ["x", "y"]], [[["a", "b", "c", "d"], ["q"]], [["x", "y"]]])
    assert scores["bleu1"] == pytest.approx(math.exp(1 - 6 / 5))
    assert scores["bleu2"] == pytest.approx(math.exp(1 - 6 / 5))


def test_cider_d_matches_hand_computed_values():
    # 2 images: every n-gram occurs in one image's references, so idf = log(2) for all of them.
    # image 1: identical 1- and 2-grams -> cosine 1 at n=1,2, 0 at n=3,4 -> 10 * (1 + 1) / 4 = 5
    # image 2: "c" vs "c d" -> unigram cosine 1/sqrt(2), length penalty exp(-1/72) -> 10 * that / 4
    expected = (5.0 + 10 / 4 * math.exp(-1 / 72) / math.sqrt(2)) / 2
    assert cider_d([["a", "b"], ["c"]], [[["a", "b"]], [["c", "d"]]]) == pytest.approx(expected)
    # the "-D" clipping: "a a" vs "a b" counts the repeated "a" only up to the reference's count
    # unigram: min(2w, w) * w / (2w * sqrt(2) w) = 1 / (2 sqrt 2); no shared bigram
    assert cider_d([["a", "a"], ["z"]], [[["a", "b"]], [["z"]]]) == pytest.approx((10 / 4 / (2 * math.sqrt(2)) + 10 / 4) / 2)
    # a word every image's references use carries no information (idf 0)
    assert cider_d([["the"], ["the"]], [[["the"]], [["the"]]]) == 0.0


# -- beam search ------------------------------------------------------------------------------
class TableRunner:
    """A fake decoder whose next-word distribution depends only on the last token (kept in h)."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int):
        self.logp = np.full((vocab, vocab), -1e9, np.float32)
        for token, nxt in table.items():
            for word, p in nxt.items():
                self.logp[token, word] = np.log(p)

    def run(self, graph, feeds):
        token = feeds["token"]
        return {"log_probs": self.logp[token], "h_out": feeds["h"], "c_out": feeds["c"]}


def test_beam_search_finds_what_greedy_misses_and_ranks_the_n_best():
    x, y = 4, 5  # after <start>: x 0.55, y 0.45; after x: <end> 0.4; after y: <end> 0.9
    runner = TableRunner({START_ID: {x: 0.55, y: 0.45}, x: {END_ID: 0.4, x: 0.3, y: 0.3}, y: {END_ID: 0.9, x: 0.05, y: 0.05}}, 6)
    h = c = np.zeros((2, 1), np.float32)
    greedy = beam_search(runner, h, c, beam_size=1, max_len=5)
    assert [g[0]["ids"] for g in greedy] == [[x], [x]]
    assert greedy[0][0]["logprob"] == pytest.approx(math.log(0.55 * 0.4), rel=1e-6)
    beams = beam_search(runner, h, c, beam_size=2, max_len=5, n_best=2)
    assert beams[0][0]["ids"] == [y] and beams[0][0]["score"] == pytest.approx(math.log(0.45 * 0.9), rel=1e-6)
    assert beams[0][1]["ids"] == [x] and beams[0][0]["score"] > beams[0][1]["score"]
    normalised = beam_search(runner, h, c, beam_size=2, max_len=5, length_penalty=1.0, n_best=1)
    assert normalised[0][0]["score"] == pytest.approx(math.log(0.45 * 0.9) / 2, rel=1e-6)  # 2 tokens: y, <end>


def test_beam_search_stops_at_max_len():
    runner = TableRunner({START_ID: {4: 1.0}, 4: {4: 1.0}}, 5)
    result = beam_search(runner, np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), beam_size=1, max_len=3)
    assert result[0][0]["ids"] == [4, 4, 4]


# -- end to end: COCO folder -> train -> bundle -> eval (ONNX Runtime) and torch/ORT agreement ---------
@pytest.fixture(scope="module")
def coco_bundle(tmp_path_factory, task):
    from apptool.engine import train

    data = write_coco(tmp_path_factory.mktemp("coco"), n_train=48, n_test=12, seed=5)
    config = task.config("tiny", {"train": {"epochs": 3}})
    return train(task, config, tmp_path_factory.mktemp("bundle"), data_dir=data, progress=False), data


def test_train_and_eval_on_a_coco_folder(coco_bundle):
    from typer.testing import CliRunner

    from apptool.cli import app

    bundle, data = coco_bundle
    config = json.loads((bundle / CONFIG).read_text())
    assert config["caption_format"] == "coco" and config["graphs"] == ["encoder", "decoder_init", "decoder_step"]
    result = CliRunner().invoke(app, ["eval", str(bundle), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"bleu1", "bleu4", "greedy_bleu1", "greedy_bleu4", "cider"} <= set(metrics)
    assert metrics["test_samples"] == 12 and 0.0 <= metrics["bleu4"] <= metrics["bleu1"] <= 1.0


def test_torch_and_onnx_runtime_write_the_same_captions(coco_bundle, task):
    from apptool.bundle import load_model
    from apptool.onnx_export import TorchRunner
    from apptool.runtime import OnnxRunner

    bundle, data = coco_bundle
    model, config, _ = load_model(bundle)
    test = task.load_data(config, data).test
    images = [test.image(i) for i in range(len(test))]
    by_torch = task.predict(TorchRunner(task.graphs(model, config)), images, config)
    by_ort = task.predict(OnnxRunner(bundle, task.name, config["graphs"]), images, config)
    assert [r["caption"] for r in by_torch] == [r["caption"] for r in by_ort]
    for t, o in zip(by_torch, by_ort):
        assert [b["caption"] for b in t["beams"]] == [b["caption"] for b in o["beams"]]
        assert np.allclose([b["score"] for b in t["beams"]], [b["score"] for b in o["beams"]], atol=1e-4)


def test_render_writes_the_caption_under_the_image(task):
    image = scenes.make_scenes(1, 0)[0].image
    drawn = task.render(image, {"caption": "a small red circle to the left of a big blue box " * 3}, task.config("tiny"))
    assert drawn.shape[1] == 384 and drawn.shape[0] > 384 and drawn.dtype == np.uint8
    band = drawn[384:]
    assert (band < 100).any() and (band == 255).mean() > 0.5  # dark text on white


def test_pretrained_encoder_is_loaded_and_fine_tuned_gradually(tmp_path, task):
    from apptool.bundle import save_state

    config = task.config("tiny")
    config["vocab"] = load_splits(config, None)[2]["vocab"]
    donor = task.build_model(config).encoder
    save_state(tmp_path / "test_resnet.safetensors", donor.state_dict())
    pretrained = task.config("tiny", {"model": {"pretrained": str(tmp_path / "test_resnet.safetensors")}})
    assert pretrained["train"]["finetune"] == "gradual"  # the decoder warms up on a frozen encoder first
    assert task.config("tiny", {"model": {"pretrained": "x"}, "train": {"finetune": "full"}})["train"]["finetune"] == "full"
    model = task.build_model({**pretrained, "vocab": config["vocab"]})
    for key, value in donor.state_dict().items():
        assert np.array_equal(model.encoder.state_dict()[key].numpy(), value.numpy()), key


def test_imagenet_encoder_stores_its_normalisation_and_the_onnx_encoder_reads_it(tmp_path, task):
    """``--backbone efficientnet_lite0 --pretrained imagenet``: data.mean/std 0.5 in the config, used by preprocess."""
    import torch
    from apptool_captioning.data import preprocess, resize

    from apptool.onnx_export import export_onnx
    from apptool.runtime import OnnxRunner

    config = task.config("tiny", {"model": {"backbone": "efficientnet_lite0", "pretrained": "imagenet"}})
    assert config["data"]["mean"] == [0.5, 0.5, 0.5] and config["data"]["std"] == [0.5, 0.5, 0.5]
    image = scenes.make_scenes(1, 5)[0].image
    batch = preprocess([image], config)
    expected = (resize(image, config["data"]["image_size"]).astype(np.float32) / 255.0 - 0.5) / 0.5
    assert np.allclose(batch[0], expected.transpose(2, 0, 1), atol=1e-6)
    model = task.build_model(config).eval()
    report = export_onnx(task, model, config, tmp_path)
    assert max(report["parity_max_abs_diff"].values()) <= 1e-4
    embedding = OnnxRunner(tmp_path, task.name, config["graphs"]).run("encoder", {"image": batch})["embedding"]
    with torch.no_grad():
        assert np.abs(model.image_embedding(torch.from_numpy(batch)).numpy() - embedding).max() <= 1e-4
