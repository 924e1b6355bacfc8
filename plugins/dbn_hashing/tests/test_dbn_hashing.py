"""dbn_hashing: data, reader quirks, metrics by hand, Hamming index, RBM maths, baselines, and train → bundle → eval."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from apptool_dbn_hashing import data as datasets
from apptool_dbn_hashing.baselines import fit_itq, fit_lsh
from apptool_dbn_hashing.index import HammingIndex, hamming_distances, have_faiss, have_numba, pack_bits, unpack_bits
from apptool_dbn_hashing.metrics import (
    average_precision_from_groups,
    precision_at_k_from_groups,
    precision_within_radius_from_groups,
    retrieval_metrics,
)

from apptool.errors import DataError, InputError


# -- data ------------------------------------------------------------------------------
def test_shapes_are_deterministic_by_seed_and_test_differs():
    a, b, c = datasets.shapes(3, 16, 4), datasets.shapes(3, 16, 4), datasets.shapes(4, 16, 4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert np.bincount(a.labels).tolist() == [4] * len(datasets.SHAPE_CLASSES)
    train, test = datasets.load_splits(
        datasets.resolve_data({"source": "shapes", "per_class": 5, "test_fraction": 0.4}, None), 0, None
    )
    assert len(train) == 50 and len(test) == 20 and test.database is train
    assert not any(np.array_equal(t, s) for t in test.images for s in train.images)


def test_shape_labels_match_what_is_drawn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        h, v = (datasets.render_shape(kind, 32, rng).astype(float) for kind in ("hbars", "vbars"))
        # horizontal bars change along y, vertical bars along x
        assert np.abs(np.diff(h, axis=0)).sum() > np.abs(np.diff(h, axis=1)).sum()
        assert np.abs(np.diff(v, axis=1)).sum() > np.abs(np.diff(v, axis=0)).sum()
        disk, ring = (
            datasets.render_shape("disk", 32, np.random.default_rng(1)),
            datasets.render_shape("circle", 32, np.random.default_rng(1)),
        )
        assert disk.astype(float).sum() > ring.astype(float).sum()  # same draw: a filled disk has more ink
    # the classes are separable: nearest class mean from one seed classifies another seed well
    train, test = datasets.shapes(0, 16, 30), datasets.shapes(1, 16, 10)
    means = np.stack([train.images[train.labels == c].reshape(-1, 256).mean(0) for c in range(10)]).astype(float)
    guess = np.argmin(((test.images.reshape(-1, 256)[:, None].astype(float) - means[None]) ** 2).sum(-1), 1)
    assert (guess == test.labels).mean() > 0.3  # chance is 0.1


def test_digits_split_is_seeded_stratified_and_disjoint():
    train, test = datasets.digits(0, 0.2)
    again, _ = datasets.digits(0, 0.2)
    assert np.array_equal(train.images, again.images)
    assert len(train) + len(test) == 1797 and not set(train.names) & set(test.names)
    assert train.images.shape[1:] == (8, 8, 1) and train.images.max() == 255
    assert np.all(np.abs(np.bincount(test.labels) - 36) <= 1)
    image, label = test[0]
    assert image.shape == (1, 8, 8) and image.dtype == np.float32 and image.min() >= 0 and image.max() <= 1


def _png(path: Path, value: int, channels: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (12, 10) if channels == 1 else (12, 10, channels)
    cv2.imwrite(str(path), np.full(shape, value, np.uint8))


def test_folder_reader_handles_real_world_quirks(tmp_path):
    _png(tmp_path / "train/cat/a.png", 10)
    _png(tmp_path / "train/cat/B.PNG", 20, channels=1)  # upper-case suffix, grey
    _png(tmp_path / "train/dog/c.png", 200, channels=4)  # RGBA
    _png(tmp_path / "test/dog/d.jpg", 190)
    (tmp_path / "train/cat/.DS_Store").write_bytes(b"\0\1junk")
    (tmp_path / "train/cat/._a.png").write_bytes(b"resource fork")  # macOS AppleDouble file
    (tmp_path / "train/cat/notes.txt").write_text("not an image")
    (tmp_path / "train/.ipynb_checkpoints").mkdir()
    (tmp_path / "train/README.md").write_text("stray file")
    train, test = datasets.read_folder(tmp_path, 8, 1)
    assert train.classes == ["cat", "dog"] and train.labels.tolist() == [0, 0, 1]
    assert train.names == ["cat/B.PNG", "cat/a.png", "dog/c.png"]
    assert test.labels.tolist() == [1] and train.images.shape == (3, 8, 8, 1)
    assert abs(int(test.images[0, 0, 0, 0]) - 190) <= 2
    rgb, _ = datasets.read_folder(tmp_path, 6, 3)
    assert rgb.images.shape == (3, 6, 6, 3)
    from apptool_dbn_hashing.task import DbnHashingTask

    task = DbnHashingTask()
    trained = {**task.config("tiny", {"data": {"source": "folder", "image_size": 8}}), "data_dir": str(tmp_path)}
    splits = task.load_data(trained, None)  # a folder-trained bundle's config finds its folder again
    assert splits.info["classes"] == ["cat", "dog"] and len(splits.test.database) == 3


def test_folder_reader_errors_name_the_file(tmp_path):
    _png(tmp_path / "train/cat/a.png", 10)
    _png(tmp_path / "train/dog/c.png", 200)
    _png(tmp_path / "test/cat/b.png", 10)
    (tmp_path / "train/cat/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"broken\.png"):
        datasets.read_folder(tmp_path, 8, 1)
    (tmp_path / "train/cat/broken.png").unlink()
    _png(tmp_path / "test/bird/x.png", 10)
    with pytest.raises(DataError, match="bird"):
        datasets.read_folder(tmp_path, 8, 1)
    shutil.rmtree(tmp_path / "test/bird")
    (tmp_path / "train/empty").mkdir()
    with pytest.raises(DataError, match=r"train/empty: class folder 'empty' holds no images"):
        datasets.read_folder(tmp_path, 8, 1)
    (tmp_path / "train/empty").rmdir()
    shutil.rmtree(tmp_path / "train/dog")
    with pytest.raises(DataError, match="only the class 'cat'"):
        datasets.read_folder(tmp_path, 8, 1)  # one class: every database image would be relevant to every query
    _png(tmp_path / "train/loose.png", 10)
    with pytest.raises(DataError, match=r"loose\.png.*outside a class folder"):
        datasets.read_folder(tmp_path, 8, 1)
    with pytest.raises(DataError, match="missing"):
        datasets.read_folder(tmp_path / "nowhere", 8, 1)


# -- metrics -----------------------------------------------------------------------------
def _brute_force(dist: np.ndarray, rel: np.ndarray, k: int) -> tuple[float, float]:
    """AP and P@k averaged over every order of the tied items (tiny inputs only)."""
    aps, pks = [], []
    for perm in itertools.permutations(range(len(dist))):
        order = sorted(perm, key=lambda j: dist[j])  # sorted() is stable: ties keep the permutation's order
        hits = rel[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append((precision * hits).sum() / max(hits.sum(), 1))
        pks.append(hits[:k].mean())
    return float(np.mean(aps)), float(np.mean(pks))


def _groups(dist, rel, bits):
    n = np.bincount(dist, minlength=bits + 1).astype(float)[None]
    r = np.bincount(dist, weights=rel.astype(float), minlength=bits + 1)[None]
    return n, r


def test_tie_aware_metrics_by_hand():
    dist, rel = np.array([0, 1, 1, 3]), np.array([1, 0, 1, 0])
    n, r = _groups(dist, rel, 4)
    # rank 1 relevant (precision 1); the tie at d=1 puts the other relevant item 2nd (2/2) or 3rd (2/3)
    assert average_precision_from_groups(n, r)[0] == pytest.approx((1 + (1 + 2 / 3) / 2) / 2)
    assert precision_at_k_from_groups(n, r, 2)[0] == pytest.approx((1 + 0.5) / 2)
    precision, found = precision_within_radius_from_groups(n, r, 1)
    assert precision[0] == pytest.approx(2 / 3) and found[0]
    nothing, found = precision_within_radius_from_groups(*_groups(np.array([3, 4]), np.array([1, 1]), 4), 2)
    assert nothing[0] == 0.0 and not found[0]  # a query with nothing within the radius counts as precision 0


def test_tie_aware_metrics_match_every_tie_order():
    rng = np.random.default_rng(5)
    for _ in range(4):
        dist, rel = rng.integers(0, 3, 7), rng.integers(0, 2, 7)
        rel[0] = 1
        n, r = _groups(dist, rel, 4)
        ap, pk = _brute_force(dist, rel, 3)
        assert average_precision_from_groups(n, r)[0] == pytest.approx(ap)
        assert precision_at_k_from_groups(n, r, 3)[0] == pytest.approx(pk)


def test_retrieval_metrics_on_codes():
    db = pack_bits(np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 0]]))
    q = pack_bits(np.array([[0, 0, 0, 0], [1, 1, 1, 1]]))
    m = retrieval_metrics(q, np.array([0, 1]), db, np.array([0, 0, 1, 1]), 4, k=2, radius=1)
    assert m == {"map": 1.0, "precision_at_2": 1.0, "precision_r1": 1.0, "r1_found": 1.0}
    m = retrieval_metrics(q, np.array([1, 0]), db, np.array([0, 0, 1, 1]), 4, k=2, radius=1)
    assert m["precision_at_2"] == 0.0 and m["precision_r1"] == 0.0 and m["map"] == pytest.approx((1 / 3 + 2 / 4) / 2)


# -- index -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [13, 64, 100])
def test_index_search_is_exact(bits):
    rng = np.random.default_rng(bits)
    db, q = pack_bits(rng.integers(0, 2, (3000, bits))), pack_bits(rng.integers(0, 2, (21, bits)))
    truth = (np.unpackbits(q, axis=1)[:, None, :] != np.unpackbits(db, axis=1)[None]).sum(-1)
    assert np.array_equal(hamming_distances(q, db), truth)
    backends = ["numpy"] + (["faiss"] if have_faiss() else [])
    for backend in backends:
        index = HammingIndex(bits, backend)
        index.add(db[:1000])
        index.add(db[1000:])  # adding to an existing index
        dist, idx = index.search(q, 10)
        assert np.array_equal(dist, np.sort(truth, 1)[:, :10])
        assert np.array_equal(np.take_along_axis(truth, idx, 1), dist)
        for row, (d, j) in zip(truth, index.radius_search(q, bits // 3)):
            assert sorted(j.tolist()) == np.flatnonzero(row <= bits // 3).tolist() and np.array_equal(row[j], d)
            assert np.all(np.diff(d) >= 0)
    ordered = np.lexsort((np.broadcast_to(np.arange(3000), truth.shape), truth), axis=1)[:, :10]
    assert HammingIndex(bits, "numpy").search(q, 10)[1].shape == (21, 0)  # an empty index finds nothing
    numpy_index = HammingIndex(bits, "numpy", threads=2)
    numpy_index.add(db)
    assert np.array_equal(numpy_index.search(q, 10)[1], ordered)  # ties broken by database order


@pytest.mark.skipif(not have_numba(), reason="numba is not installed")
@pytest.mark.parametrize("bits", [13, 64, 100])
@pytest.mark.parametrize("layout", ["random", "farthest_first", "all_tied"])
def test_numba_kernel_matches_numpy_bit_for_bit(bits, layout):
    """Same distances and same indices (ties by database order), including the kernel's buffer compaction."""
    rng = np.random.default_rng(bits)
    raw = rng.integers(0, 2, (3000, bits))
    if layout == "farthest_first":  # every row is closer than the last: the candidate buffer fills and compacts
        raw = raw[np.argsort(-raw.sum(1), kind="stable")]
    elif layout == "all_tied":
        raw = np.repeat(raw[:3], 1000, axis=0)
    db, q = pack_bits(raw), pack_bits(np.vstack([np.zeros((1, bits), int), rng.integers(0, 2, (20, bits))]))
    results = []
    for backend in ("numpy", "numba"):
        index = HammingIndex(bits, backend, threads=2)
        index.add(db)
        results.append([index.search(q, k) for k in (1, 10, 257)])
    for (d0, i0), (d1, i1) in zip(*results):
        assert np.array_equal(d0, d1) and np.array_equal(i0, i1)


def test_index_save_load_add_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    codes = pack_bits(rng.integers(0, 2, (50, 24)))
    images = rng.integers(0, 255, (50, 8, 8, 1), dtype=np.uint8)
    index = HammingIndex(24, "numpy")
    index.add(codes[:40], np.arange(40) % 3, [f"n{i}" for i in range(40)], images[:40])
    path = index.save(tmp_path / "index.safetensors", {"classes": ["a", "b", "c"]})
    loaded, meta = HammingIndex.load(path, "numpy")
    assert meta == {"classes": ["a", "b", "c"]} and loaded.names[:2] == ["n0", "n1"]
    assert np.array_equal(loaded.codes, codes[:40]) and np.array_equal(loaded.images, images[:40])
    loaded.add(codes[40:], np.zeros(10), None, images[40:])
    assert len(loaded) == 50 and loaded.search(codes[45:46], 1)[1][0, 0] == 45
    assert np.array_equal(unpack_bits(loaded.codes, 24), np.unpackbits(codes, axis=1)[:, :24])
    assert b"pickle" not in path.read_bytes()[:200]
    with pytest.raises(InputError, match="3 bytes"):
        loaded.search(np.zeros((1, 2), np.uint8), 3)
    with pytest.raises(InputError, match="images"):
        loaded.add(codes[:1])
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(Exception, match="bad.safetensors"):
        HammingIndex.load(tmp_path / "bad.safetensors")


# -- baselines --------------------------------------------------------------------------------
def test_itq_rotation_lowers_quantisation_loss_and_lsh_is_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20))
    itq = fit_itq(x, 8, seed=1)
    v = (x - itq.mean) @ itq.projection
    pca_only = fit_itq(x, 8, seed=1, iterations=0)
    v0 = (x - pca_only.mean) @ pca_only.projection
    loss = lambda z: ((np.sign(z) - z) ** 2).sum()  # noqa: E731
    assert loss(v) < loss(v0)
    assert np.allclose(itq.projection.T @ itq.projection, pca_only.projection.T @ pca_only.projection, atol=1e-8)
    assert fit_itq(x, 21, seed=1) is None  # more bits than dimensions
    assert np.array_equal(fit_lsh(x, 16, 3).encode(x), fit_lsh(x, 16, 3).encode(x))
    assert fit_lsh(x, 16, 3).encode(x).shape == (300, 2)


# -- RBMs ----------------------------------------------------------------------------------------
def test_free_energy_matches_sum_over_hidden_states():
    import torch
    from apptool_dbn_hashing.rbm import RBM

    g = torch.Generator().manual_seed(0)
    v = torch.rand(5, 4, generator=g)
    hidden = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    for kind in ("bernoulli", "gaussian"):
        rbm = RBM(torch.randn(4, 3, generator=g), torch.randn(4, generator=g), torch.randn(3, generator=g), kind)
        interaction = v @ rbm.weight @ hidden.T + (hidden @ rbm.hidden_bias)[None]
        visible = v @ rbm.visible_bias if kind == "bernoulli" else -0.5 * ((v - rbm.visible_bias) ** 2).sum(1)
        exact = -torch.logsumexp(interaction + visible[:, None], dim=1)
        assert torch.allclose(rbm.free_energy(v), exact, atol=1e-5)


def test_cd_and_pcd_learn_and_are_deterministic():
    import torch
    from apptool_dbn_hashing.rbm import train_stack

    patterns = torch.tensor([[1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1], [1, 0, 1, 0, 1, 0]], dtype=torch.float32)
    data = patterns[torch.arange(300) % 3]
    for persistent in (False, True):
        opts = {"epochs": 30, "batch_size": 10, "persistent": persistent, "cd_k": 2 if persistent else 1, "sparsity_cost": 0.1}
        rbms, logs = train_stack(data, [8], "bernoulli", opts, seed=3, progress=False)
        errors = [e["reconstruction_error"] for e in logs[0]["epochs"]]
        assert errors[-1] < 0.5 * errors[0]
        assert logs[0]["epochs"][4]["momentum"] == 0.5 and logs[0]["epochs"][5]["momentum"] == 0.9
        again, _ = train_stack(data, [8], "bernoulli", opts, seed=3, progress=False)
        assert torch.equal(rbms[0].weight, again[0].weight)
    gaussian, logs = train_stack(
        torch.randn(200, 5, generator=torch.Generator().manual_seed(0)),
        [4, 3],
        "gaussian",
        {"epochs": 3},
        seed=0,
        held_out=torch.randn(20, 5),
        progress=False,
    )
    assert [r.visible for r in gaussian] == ["gaussian", "bernoulli"] and "free_energy_held_out" in logs[1]["epochs"][0]


# -- the plugin ------------------------------------------------------------------------------------
def test_task_module_imports_without_torch():
    code = (
        "import sys\nclass Block:\n    def find_spec(self, name, *a):\n        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch blocked')\nsys.meta_path.insert(0, Block())\n"
        "import apptool_dbn_hashing.plugin, apptool_dbn_hashing.task, apptool_dbn_hashing.demo\n"
        "from apptool_dbn_hashing.task import DbnHashingTask\nt = DbnHashingTask()\n"
        "assert len(t.sample_inputs(t.config('quick'), 3)) == 3\nassert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def tiny_bundle(shared_bundle):
    """The tiny bundle (pretrained and fine-tuned once per run, shared with the conformance suite) and its task."""
    from apptool.plugins import get_plugins

    task = get_plugins().task("dbn_hashing")
    return shared_bundle(task), task


def test_train_tiny_bundle_eval_on_onnx_runtime(tiny_bundle):
    from apptool.evaluation import evaluate_bundle

    bundle, _ = tiny_bundle
    metrics = evaluate_bundle(bundle)
    for key in ("map", "precision_at_10", "precision_r2", "lsh_map", "itq_map", "itq_precision_r2"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["bits"] == 16 and metrics["queries"] == 360 and metrics["database"] == 1437
    saved = json.loads((bundle / "metrics.json").read_text())
    assert saved["test"]["map"] == pytest.approx(metrics["map"])
    log = saved["prepare"]  # the greedy stage's log, from Task.prepare
    assert [layer["n_hidden"] for layer in log["layers"]] == [32, 16]
    assert log["train_images"] + log["held_out_images"] == 1437
    index, meta = HammingIndex.load(bundle / "index.safetensors")
    assert len(index) == 1437 and index.bits == 16 and meta["classes"][0] == "0" and index.images.shape == (1437, 8, 8, 1)


def test_bundle_bits_agree_between_torch_and_onnx(tiny_bundle):
    import torch

    from apptool.bundle import load_model
    from apptool.onnx_export import TorchRunner
    from apptool.runtime import Predictor

    bundle, task = tiny_bundle
    model, config, _ = load_model(bundle, task)
    _, test = datasets.digits(config["seed"], 0.2)
    torch_out = task.encode(TorchRunner(task.graphs(model, config)), test.images)
    onnx_out = task.encode(Predictor(bundle, task=task).runner, test.images)
    assert np.array_equal(torch_out["bits"], onnx_out["bits"])
    assert np.allclose(torch_out["logits"], onnx_out["logits"], atol=1e-4)
    assert torch.count_nonzero(model.rbm_filters) > 0  # loaded from the bundle: the first RBM's weights
    rows = Predictor(bundle, task=task).predict(task.sample_inputs(config, 2))
    assert len(rows[0]["bits"]) == 16 and len(rows[0]["code"]) == 4
    assert task.render(task.sample_inputs(config, 1)[0], rows[0], config).shape[2] == 3
    with pytest.raises(InputError):
        Predictor(bundle, task=task).predict([np.zeros((0, 3), np.uint8)])


def test_demo_tab_builds(tiny_bundle, tmp_path):
    import gradio as gr
    from apptool_dbn_hashing.demo import first_layer_view

    from apptool.demo_context import DemoContext
    from apptool.runtime import Predictor

    bundle, task = tiny_bundle
    ctx = DemoContext(Predictor(bundle, task=task), work_dir=tmp_path)
    with gr.Blocks():
        task.demo(ctx)
    mosaic, caption = first_layer_view(bundle, ctx.config)
    assert mosaic.ndim == 3 and "first RBM" in caption
    assert len(list(tmp_path.glob("dbn_hashing_example_*.png"))) == 8


def test_cli_search_and_add_grow_the_bundle_index(tiny_bundle, tmp_path):
    import shutil

    from apptool_dbn_hashing.commands import add, search

    bundle = Path(shutil.copytree(tiny_bundle[0], tmp_path / "bundle"))
    task = tiny_bundle[1]
    (tmp_path / "new/seven").mkdir(parents=True)
    for i, image in enumerate(task.sample_inputs(task.config("tiny"), 3, seed=9)):
        cv2.imwrite(str(tmp_path / f"new/seven/{i}.png"), image)
    report = add(bundle, [tmp_path / "new"], None)
    assert report["added"] == 3 and report["database"] == 1440 and report["classes"][-1] == "seven"
    hits = search(bundle, [tmp_path / "new/seven/0.png"], k=1440, radius=None)[0]["results"]
    assert any(h["name"].endswith("seven/0.png") and h["class"] == "seven" for h in hits if h["distance"] == 0)
    within = search(bundle, [tmp_path / "new/seven/0.png"], k=5, radius=0)[0]["results"]
    assert all(h["distance"] == 0 for h in within) and within
    done = subprocess.run(
        [sys.executable, "-m", "apptool", "hashing-search", str(bundle), str(tmp_path / "new/seven/1.png"), "--k", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(json.loads(done.stdout)[0]["results"]) == 2


def test_imagenet_features_store_their_normalisation_and_the_onnx_graph_applies_it(tmp_path):
    """``model.features=backbone`` with ImageNet EfficientNet-Lite0: mean/std 0.5 stored, the grey stem reads them."""
    import torch
    from apptool_dbn_hashing.model import build

    from apptool.onnx_export import export_onnx
    from apptool.plugins import get_plugins
    from apptool.runtime import OnnxRunner

    task = get_plugins().task("dbn_hashing")
    overrides = {
        "model": {"features": "backbone", "backbone": "efficientnet_lite0", "pretrained": "imagenet", "backbone_size": 32}
    }
    config = task.config("tiny", overrides)
    assert config["model"]["mean"] == [0.5, 0.5, 0.5] and config["model"]["std"] == [0.5, 0.5, 0.5]
    config = {**config, "data": datasets.resolve_data(config["data"], None)}
    model = task.build_model(config).eval()  # no pending training set: nothing is pretrained
    assert model.input_mean.flatten().tolist() == [0.5] and model.input_std.flatten().tolist() == [0.5]  # digits are grey
    report = export_onnx(task, model, config, tmp_path)
    assert max(report["parity_max_abs_diff"].values()) <= 1e-4
    images = datasets.to_model_input(np.stack(task.sample_inputs(config, 3)).mean(3, keepdims=True).astype(np.uint8))
    features = OnnxRunner(tmp_path, task.name, config["graphs"]).run("model", {"image": images})["features"]
    legacy = build({**config, "model": {k: v for k, v in config["model"].items() if k not in ("mean", "std")}}, (1, 8, 8), 10)
    legacy.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert np.abs(model.visible(torch.from_numpy(images)).numpy() - features).max() <= 1e-4
        assert np.abs(legacy.eval().visible(torch.from_numpy(images)).numpy() - features).max() > 1e-2  # old bundles: 0.5/0.25


def test_the_rbm_budget_is_in_updates_for_the_data_at_hand_and_stated_epochs_win():
    from types import SimpleNamespace

    from apptool_dbn_hashing.pretrain import pretrain

    from apptool.plugins import get_plugins

    task = get_plugins().task("dbn_hashing")
    config = task.config("tiny", {"model": {"rbm": {"steps": 12, "batch_size": 8}}})
    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    log = pretrain(task.build_model(config), SimpleNamespace(images=images), None, config, progress=False)
    assert log["budget"] == "budget 12 steps / 5 steps per epoch -> 3 epochs"
    assert [len(layer["epochs"]) for layer in log["layers"]] == [3, 3]
    assert task.config("quick")["model"]["rbm"]["steps"] > 0
    assert task.config("quick", {"model": {"rbm": {"epochs": 3}}})["model"]["rbm"]["steps"] == 0
