"""The one training scaffold (tosc.training): every trainer's config shares one base with the
held-out guard, every trainer resumes, seeds, saves and strips through it, and the task
networks' fit resumes to the weights of an uninterrupted fit."""

import ast
import inspect
from pathlib import Path

import pytest
import torch

import tosc.training as scaffold
from tosc.checkpoint import load_checkpoint, save_checkpoint
from tosc.errors import ConfigError
from tosc.jscc import train as jscc_train
from tosc.source_coding.learned import train as codec_train
from tosc.source_coding.learned import train_conv
from tosc.training import TrainConfigBase, epoch_seed, fit_best_epoch, strip_training_state

CONFIGS = (codec_train.TrainConfig, train_conv.ConvTrainConfig, jscc_train.JSCCTrainConfig)
TRAINER_MODULES = (codec_train, train_conv, jscc_train)


def test_every_trainer_config_is_the_shared_base_and_refuses_held_out_tasks():
    for config in CONFIGS:
        assert issubclass(config, TrainConfigBase), config
        # the guard sits in the base: it refuses a held-out network for every variant, also
        # where the task is only monitored (codec v3 used to check it only with lambda_s > 0)
        with pytest.raises(ConfigError, match="held-out"):
            config(task="classifier-resnet")
        with pytest.raises(ConfigError, match="epochs"):
            config(epochs=0)
        with pytest.raises(ConfigError, match="train_images"):
            config(train_images=0)
        with pytest.raises(ConfigError, match="unknown training settings: lamda"):
            config.from_dict({"lamda": 1})
        assert config.defaults() == config().to_dict()


def test_no_trainer_writes_checkpoints_draws_epoch_seeds_or_draws_bars_itself():
    """Saving, resuming, seeds and progress live in the scaffold only (a trainer that imports
    save_checkpoint or tqdm again has grown its own copy)."""
    for module in TRAINER_MODULES:
        tree = ast.parse(inspect.getsource(module))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert not imported & {"save_checkpoint", "tqdm", "epoch_seed"}, (module.__name__, imported)


def test_epoch_seeds_are_distinct_and_in_range():
    seeds = {epoch_seed(seed, epoch) for seed in range(5) for epoch in range(50)}
    assert len(seeds) == 250 and all(0 <= s < 2**63 for s in seeds)


def test_resume_reads_settings_added_later_as_defaults_and_names_what_changed(tmp_path):
    cfg = jscc_train.JSCCTrainConfig(train_images=32, eval_images=8, epochs=1, batch_size=32, width=8)
    out = tmp_path / "j.pt"
    jscc_train.train_jscc(cfg, out, progress=False)
    ckpt = load_checkpoint(out)
    del ckpt["config"]["train"]["snr_adaptive"]  # a file written before the setting existed
    save_checkpoint(out, **{k: v for k, v in ckpt.items() if k not in ("format", "format_version")})
    run = scaffold.TrainingRun(out, kind="jscc", arch=jscc_train.ARCH, config=cfg, resume=True, progress=False)
    assert run.read_resume()["train_state"]["epoch"] == 1
    assert run.elapsed_before == pytest.approx(ckpt["train_state"]["train_time_s"]) and run.elapsed_before > 0
    other = jscc_train.JSCCTrainConfig(**{**cfg.to_dict(), "lr": 0.002, "width": 16})
    with pytest.raises(ConfigError, match=r"other settings \(lr, width\)"):
        scaffold.TrainingRun(out, kind="jscc", arch=jscc_train.ARCH, config=other, resume=True).read_resume()


def test_codec_v3_refuses_a_one_label_task_on_scenes():
    cfg = train_conv.ConvTrainConfig(dataset="fashion-scenes", lambda_s=0.05, train_images=8, epochs=1,
                                      batch_size=4, width=8, latent_channels=8, hyper_channels=4, hyper_width=8)
    with pytest.raises(ConfigError, match="classifier-cnn judges single items"):
        train_conv.train_conv_codec(cfg, "/nonexistent/never-written.pt", progress=False)


class _Killed(Exception):
    pass


def _fit(state_path, monkeypatch=None, die_after: int | None = None):
    torch.manual_seed(0)
    x = torch.randn(96, 5)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    generator = torch.Generator().manual_seed(3)

    def batch_loss(idx):
        noisy = x[idx] + 0.1 * torch.randn(len(idx), 5, generator=generator)  # the generator drives augmentation too
        return torch.nn.functional.cross_entropy(model(noisy), y[idx])

    def validate():
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())

    if die_after is not None:
        saves = []
        real = scaffold.save_checkpoint

        def save_then_die(*args, **kwargs):
            real(*args, **kwargs)
            saves.append(1)
            if len(saves) == die_after:
                raise _Killed

        monkeypatch.setattr(scaffold, "save_checkpoint", save_then_die)
    score = fit_best_epoch(model, len(x), batch_loss, validate, epochs=4, batch_size=16, lr=0.01, generator=generator,
                           desc="toy", score_name="accuracy", progress=False, state_path=state_path)
    return model, score


def test_task_network_fit_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    straight, score = _fit(None)
    state = tmp_path / "toy.pt.fit-state"
    with pytest.raises(_Killed):
        _fit(state, monkeypatch, die_after=2)  # killed right after epoch 2's state
    monkeypatch.undo()
    assert load_checkpoint(state, kind="fit-state")["train_state"]["epoch"] == 2
    resumed, resumed_score = _fit(state)
    assert resumed_score == score and not state.exists()  # the state goes once the fit is done
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_a_fit_state_of_another_fit_is_refused(tmp_path, monkeypatch):
    state = tmp_path / "toy.pt.fit-state"
    with pytest.raises(_Killed):
        _fit(state, monkeypatch, die_after=1)
    monkeypatch.undo()
    ckpt = load_checkpoint(state)
    ckpt["config"]["lr"] = 0.5
    save_checkpoint(state, **{k: v for k, v in ckpt.items() if k not in ("format", "format_version")})
    with pytest.raises(ConfigError, match="another fit"):
        _fit(state)


def test_task_trainers_keep_their_fit_state_beside_the_output():
    assert scaffold.fit_state_path(Path("/z/net.pt")) == Path("/z/net.pt.fit-state")
    from tosc.tasks import classifiers, scenes, segmentation

    for fn in (classifiers.train_classifier, segmentation.train_segmenter, scenes.train_scene_classifier,
               scenes.train_scene_segmenter):
        assert "fit_state_path(out)" in inspect.getsource(fn), fn.__name__


def test_stripping_drops_resume_state_and_keeps_the_training_runs_provenance(tmp_path):
    path = tmp_path / "model.pt"
    weights = {"w": torch.arange(4.0)}
    state = {"optimizer": {"state": {0: torch.zeros(1000)}}, "scheduler": {}, "epoch": 3, "history": [{"loss": 1.0}],
             "train_time_s": 12.5}
    save_checkpoint(path, kind="jscc", arch="deep-jscc", state_dict=weights, config={"epochs": 3},
                    train_state=state, versions={"torch": "0.0-training-run"}, git_commit="abc123")
    size = path.stat().st_size
    assert strip_training_state(path, kind="jscc", arch="deep-jscc")
    ckpt = load_checkpoint(path, kind="jscc")
    assert ckpt["train_state"] == {"epoch": 3, "history": [{"loss": 1.0}], "train_time_s": 12.5, "finished": True}
    assert ckpt["versions"] == {"torch": "0.0-training-run"} and ckpt["git_commit"] == "abc123"
    assert torch.equal(ckpt["state_dict"]["w"], weights["w"]) and path.stat().st_size < size
    assert not strip_training_state(path, kind="jscc")  # nothing left to drop: unchanged
