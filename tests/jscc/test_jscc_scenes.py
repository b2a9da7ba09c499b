"""Deep JSCC and analog TOSC-SR on scenes: the shared semantic term, the scene trainer, the warm
start from 28x28 weights and the two scene systems."""

import pytest
import torch
import torch.nn.functional as F

import tosc.jscc.train as jt
import tosc.training as scaffold  # every trainer saves through the one scaffold
from tosc import registry
from tosc.channel import AnalogChannel
from tosc.checkpoint import load_checkpoint, save_checkpoint
from tosc.errors import ConfigError
from tosc.jscc.model import DeepJSCC, JSCCConfig
from tosc.jscc.zoo import ARCH, CHECKPOINT_KIND, jscc_path
from tosc.tasks import TRAINING_TASK
from tosc.tasks.scenes import scene_training_task
from tosc.tasks.semantic import load_training_task

SCENE_TASK = scene_training_task(1)  # the grey scenes' network
TINY = dict(dataset="fashion-scenes", task=SCENE_TASK, train_images=32, eval_images=8, epochs=2, batch_size=16,
            width=8, lambda_s=0.01)
SCENE_SYSTEMS = tuple(n for n in registry.select("system", family="jscc")
                      if registry.get("system", n).meta["trained_on"] == "scenes")


class _Killed(Exception):
    pass


def _old_inline_terms(model, task, x, labels, snr, k, channel, gen, cfg):
    """The loss of the first version of the trainer (inline batch-mean cross-entropy)."""
    x_hat = model(x, snr, k, channel, gen)["x_hat"]
    mse = F.mse_loss(x_hat, x)
    ce = F.cross_entropy(task(x_hat), labels)
    return {"mse": mse, "ce": ce, "loss": cfg.lambda_p * mse + cfg.lambda_s * ce}


def test_one_label_semantic_term_equals_the_old_inline_cross_entropy(fashion_test_slice):
    task = load_training_task(TRAINING_TASK)
    cfg = jt.JSCCTrainConfig(lambda_s=0.005)
    x, labels = fashion_test_slice.images[:64], fashion_test_slice.labels[:64]
    results = []
    for terms_of in (jt._loss_terms, _old_inline_terms):
        torch.manual_seed(0)
        model = DeepJSCC(JSCCConfig(width=8))
        gen = torch.Generator().manual_seed(3)
        terms = terms_of(model, task, x, labels, 5.0, 100, AnalogChannel("awgn", normalize=False), gen, cfg)
        terms["loss"].backward()
        results.append((terms, [p.grad.clone() for p in model.parameters()]))
    (new, new_grads), (old, old_grads) = results
    # the same batch mean up to float32 rounding of the sum (NllLoss's own mean vs .mean() of the
    # per-image values: at most an ulp apart)
    assert torch.allclose(new["ce"], old["ce"], rtol=1e-6, atol=0) and new["ce"] > 0.1
    assert torch.allclose(new["loss"], old["loss"], rtol=1e-6, atol=0)
    for a, b in zip(new_grads, old_grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-10)


def test_semantic_targets_are_labels_for_items_and_present_sets_for_scenes():
    from tosc.data import load_dataset

    items = load_dataset("fashion-mnist", "validation", limit=4)
    scenes = load_dataset("fashion-scenes", "validation", limit=4)
    assert torch.equal(jt.semantic_targets(items, TRAINING_TASK), items.labels)
    targets = jt.semantic_targets(scenes, SCENE_TASK)
    assert targets.dtype == torch.float32 and torch.equal(targets.bool(), scenes.present)
    with pytest.raises(ConfigError, match="no scene annotations"):
        jt.semantic_targets(items, SCENE_TASK)
    # the 28x28 one-label classifier on scenes: refused, naming the scenes' training task
    with pytest.raises(ConfigError, match=f"judges single items.*training task: {SCENE_TASK}"):
        jt.train_jscc(jt.JSCCTrainConfig(**{**TINY, "task": TRAINING_TASK}), "unused.pt", progress=False)


def test_tiny_scene_training_resumes_identically(tmp_path, monkeypatch):
    cfg = jt.JSCCTrainConfig(**TINY)
    metrics = jt.train_jscc(cfg, tmp_path / "straight.pt", progress=False)
    assert {"psnr_db", "exact_set_accuracy", "mean_f1", "exact_set_accuracy/cbr1_16@0dB"} <= set(metrics)
    assert "accuracy" not in metrics and 0 <= metrics["mean_f1"] <= 1

    real_save = scaffold.save_checkpoint

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise _Killed

    monkeypatch.setattr(scaffold, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        jt.train_jscc(cfg, tmp_path / "resumed.pt", progress=False)
    monkeypatch.setattr(scaffold, "save_checkpoint", real_save)
    jt.train_jscc(cfg, tmp_path / "resumed.pt", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "straight.pt", kind="jscc")
    b = load_checkpoint(tmp_path / "resumed.pt", kind="jscc")
    assert b["train_state"]["epoch"] == 2 and b["config"]["model"]["image_hw"] == [64, 64]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["metrics"] == b["metrics"]


def test_warm_start_across_image_sizes_keeps_the_symbol_layout(tmp_path):
    small, scenes = JSCCConfig(image_hw=(28, 28), width=8), JSCCConfig(image_hw=(64, 64), width=8)
    # 16 latent channels at both sizes: CBR r is 32 r whole channels (1/16 -> 2) at either size
    assert small.latent_shape[0] == scenes.latent_shape[0] == 16
    assert jt.warm_start_compatible(small, scenes)
    assert not jt.warm_start_compatible(JSCCConfig(image_hw=(28, 28), width=16), scenes)
    assert not jt.warm_start_compatible(JSCCConfig(image_hw=(30, 30), width=8), JSCCConfig(image_hw=(62, 62), width=8))
    torch.manual_seed(1)
    source = DeepJSCC(small)
    save_checkpoint(tmp_path / "small.pt", kind=CHECKPOINT_KIND, arch=ARCH, state_dict=source.state_dict(),
                    config={"model": small.to_dict(), "train": {}}, metrics={}, variant="deep-jscc",
                    train_state={"epoch": 1, "history": []})
    cfg = jt.JSCCTrainConfig(**{**TINY, "epochs": 1, "lambda_s": 0.0, "lr": 1e-12,
                                "init_from": str(tmp_path / "small.pt")})
    jt.train_jscc(cfg, tmp_path / "warm.pt", progress=False)
    warm = load_checkpoint(tmp_path / "warm.pt", kind="jscc")["state_dict"]
    for key, value in source.state_dict().items():  # lr 1e-12: still the 28x28 weights
        assert torch.allclose(warm[key], value, atol=1e-6), key
    wide = JSCCConfig(image_hw=(28, 28), width=16)
    save_checkpoint(tmp_path / "wide.pt", kind=CHECKPOINT_KIND, arch=ARCH, state_dict=DeepJSCC(wide).state_dict(),
                    config={"model": wide.to_dict(), "train": {}}, metrics={}, variant="deep-jscc",
                    train_state={"epoch": 1, "history": []})
    with pytest.raises(ConfigError, match="another architecture"):
        jt.train_jscc(jt.JSCCTrainConfig(**{**TINY, "init_from": str(tmp_path / "wide.pt")}), tmp_path / "x.pt",
                      progress=False)


def test_scene_systems_are_registered_for_scenes():
    assert set(SCENE_SYSTEMS) == {"deep-jscc-scenes", "tosc-sr-analog-scenes"}
    for name in ("deep-jscc", "tosc-sr-analog"):
        assert registry.get("system", name).meta["trained_on"] == "items"
    assert [registry.get("system", n).meta["proposed"] for n in sorted(SCENE_SYSTEMS)] == [False, True]


@pytest.mark.parametrize("name", SCENE_SYSTEMS)
def test_scene_systems_transmit_eight_scenes(name):
    from tosc.data.scenes import make_scenes
    from tosc.metrics import psnr_db
    from tosc.systems import build_system

    assert jscc_path(registry.get("system", name).meta["source"]).exists(), "run scripts/train_jscc_scenes.py"
    scenes = make_scenes("test", n=8).images
    system = build_system(name)
    ckpt = system.checkpoint["config"]
    assert ckpt["train"]["dataset"] == "fashion-scenes" and ckpt["train"]["task"] == SCENE_TASK
    assert (ckpt["train"]["lambda_s"] > 0) == registry.get("system", name).meta["proposed"]
    psnr = []
    for snr in (0.0, 20.0):
        tx = system.transmit(scenes, snr_db=snr, n_channel_uses=512, seed=1)  # CBR 1/8 of 64 x 64
        assert tx.received.shape == scenes.shape and tx.ok.all() and (tx.payload_bits == 0).all()
        assert (tx.channel_uses == 512).all() and tx.info["k_max"] == 2048 and tx.info["model"] == name
        psnr.append(psnr_db(tx.received, scenes).mean().item())
    assert 15.0 < psnr[0] < psnr[1], psnr
    again = system.transmit(scenes, snr_db=0.0, n_channel_uses=512, seed=1)
    assert torch.equal(again.received, system.transmit(scenes, snr_db=0.0, n_channel_uses=512, seed=1).received)
