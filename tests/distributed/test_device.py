"""--device: resolution, clear errors without CUDA, bit-exact entropy coding on any device,
and the global-batch sampler."""

import pytest
import torch

from tosc.cli import main
from tosc.distributed import GlobalBatchSampler, resolve_device, shard_bounds
from tosc.errors import ConfigError
from tosc.source_coding.learned import LearnedCodec

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_a_clear_error(name):
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        resolve_device(name)
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        LearnedCodec.load("mse-only-r1", device=name)


@no_cuda
@pytest.mark.parametrize("command", [
    ["train", "--out", "never.pt", "--epochs", "1"],
    ["transmit", "--system", "mse-only+ideal", "--snr-db", "5", "--cbr", "1/8", "--limit", "2", "--out", "never"],
    ["evaluate", "--systems", "mse-only+ideal", "--snr-db", "5", "--cbr", "1/8", "--limit", "2", "--out", "never"],
])
def test_cli_device_cuda_without_a_gpu(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(command + ["--device", "cuda"]) == 2
    assert "error: device cuda: no CUDA GPU is available" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("device", DEVICES)
def test_streams_written_on_a_device_are_the_cpu_bytes(device, fashion_test_slice):
    """Entropy coding runs on the CPU over the stored integer tables; only the transforms move."""
    images = fashion_test_slice.images
    cpu = LearnedCodec.load("tosc-sr-r3")
    other = LearnedCodec.load("tosc-sr-r3", device=device)
    assert other.model_id == cpu.model_id
    streams = other.encode(images)
    assert streams == cpu.encode(images)
    assert other.encode_file(images) == cpu.encode_file(images)
    # decoding on the CPU gives back exactly the symbols the device computed
    assert torch.equal(cpu.decode_symbols(streams), other.symbols(images)[0])
    torch.testing.assert_close(other.decode(streams), cpu.decode(streams), rtol=0, atol=1e-5)


@pytest.mark.parametrize("n, batch", [(97, 32), (64, 16), (5, 4)])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_rank_slices_rebuild_the_single_process_batches(n, batch, world):
    single = list(GlobalBatchSampler(n, batch).epoch(seed=11))
    ranks = [list(GlobalBatchSampler(n, batch, r, world).epoch(seed=11)) for r in range(world)]
    assert all(len(r) == len(single) for r in ranks)
    for step, whole in enumerate(single):
        parts = [ranks[r][step] for r in range(world)]
        assert torch.equal(torch.cat([p.indices for p in parts]), whole.indices)
        assert sum(p.weight for p in parts) == pytest.approx(1.0)
        assert [p.lo for p in parts] == sorted(p.lo for p in parts)


def test_batch_smaller_than_the_processes():
    with pytest.raises(ConfigError, match="batch size 2 is smaller than the 4 processes"):
        GlobalBatchSampler(10, 2, 0, 4)


def test_shard_bounds_cover_everything_once():
    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


@no_cuda
def test_systems_take_the_device_where_they_have_networks():
    from tosc.systems import build_system

    assert build_system("jpeg-payload+ideal", device="cuda").device == "cpu"  # a CPU codec: runs on the CPU
    assert build_system("deep-jscc", device="cuda").device == "cpu"  # listed as CPU-only in the registry
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        build_system("mse-only+ideal", device="cuda")


def test_the_grid_hands_its_device_to_every_system_and_records_where_it_ran(tmp_path, monkeypatch):
    """The plumbing, without a GPU: a stand-in device name travels to build_system, and each
    record says where its system ran: the GPU for the learned codec, the CPU for JPEG."""
    from fractions import Fraction

    import tosc.distributed
    import tosc.systems
    from tosc import registry
    from tosc.evaluation import GridSpec, run_grid

    seen = []
    real_build = tosc.systems.build_system

    def build(name, *, device=None, **options):
        seen.append((name, device))
        system = real_build(name, **options)  # on the CPU: this machine may have no GPU
        if "cuda" in registry.get("system", name).meta["devices"]:
            system.device = device  # stands in for a system that ran there
        return system

    real_resolve = tosc.distributed.resolve_device
    monkeypatch.setattr(tosc.distributed, "resolve_device",
                        lambda name, local_rank=0: "cuda:7" if name == "cuda" else real_resolve(name, local_rank))
    monkeypatch.setattr(tosc.systems, "build_system", build)
    spec = GridSpec(("mse-only+ideal", "jpeg-payload+ideal"), ("awgn",), (10.0,), (Fraction(1, 4),), limit=4)
    records = run_grid(spec, tmp_path, jobs=1, progress=False, device="cuda")
    # the points' systems get the device (a preparation step may build a system without one)
    assert sorted(s for s in seen if s[1] is not None) == [("jpeg-payload+ideal", "cuda:7"), ("mse-only+ideal", "cuda:7")]
    assert {r.system: r.to_dict()["config"]["device"] for r in records} == {"mse-only+ideal": "cuda:7",
                                                                               "jpeg-payload+ideal": "cpu"}
