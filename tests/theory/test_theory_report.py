"""The ``tosc theory`` report (JSON + plots), its plots module and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tosc.cli import main
from tosc.errors import ConfigError
from tosc.theory import RDPoint, TheoryConfig, make_source, run_theory
from tosc.theory.plots import envelope_grid

SMALL = TheoryConfig(n_lams=4, n_betas=4, semantic_fractions=(0.0, 0.6), n_distortions=3, max_iter=400)
PNG = b"\x89PNG\r\n\x1a\n"


def test_report_writes_json_and_plots(tmp_path):
    report = run_theory(make_source("dsbs"), tmp_path, SMALL)
    record = json.loads((tmp_path / "theory.json").read_text())
    assert record == json.loads(json.dumps(report.record))
    for key in ("config", "seed", "versions", "git_commit", "source", "surface", "curves", "plots"):
        assert key in record
    assert record["versions"]["numpy"] == np.__version__
    assert len(record["surface"]["points"]) == 4 * 4
    assert [c["fraction_of_i_xy"] for c in record["curves"]] == [0.0, 0.6]
    for curve in record["curves"]:
        for point in curve["points"]:  # dsbs has a closed form for every point
            assert point["rate_bits"] == pytest.approx(point["reference_rate_bits"], abs=2e-3)
    for name in ("rate_vs_distortion", "rate_vs_semantic_info", "rate_contour"):
        path = tmp_path / record["plots"][name]
        assert path.read_bytes()[:8] == PNG
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes left no temporaries


def test_same_seed_same_files(tmp_path):
    src = make_source("dsbs", eps=0.05)
    config = TheoryConfig(n_lams=3, n_betas=3, semantic_fractions=(0.5,), n_distortions=2, max_iter=300, seed=3)
    run_theory(src, tmp_path / "a", config)
    run_theory(src, tmp_path / "b", config)
    for rel in ("theory.json", "plots/rate_vs_distortion.png", "plots/rate_contour.png"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_lams": 1}, "n_lams"), ({"beta_max": 0.5}, "beta_max"), ({"semantic_fractions": (1.2,)}, "semantic_fractions"),
     ({"seed": -1}, "seed"), ({"n_restarts": -1}, "n_restarts")],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TheoryConfig(**kwargs)


def _point(rate: float, dist: float, sem: float) -> RDPoint:
    return RDPoint(rate, dist, 0.0, sem, 0.0, np.ones((1, 1)), 0, True, 0.0, 0.0)


def test_envelope_grid_is_the_least_dominating_rate():
    points = [_point(2.0, 0.1, 0.1), _point(1.0, 0.3, 0.2), _point(0.5, 0.3, 0.6)]
    grid = envelope_grid(points, np.array([0.05, 0.1, 0.3]), np.array([0.1, 0.2, 0.6]))
    expected = np.array([[np.nan, 2.0, 2.0], [np.nan, 2.0, 1.0], [np.nan, 2.0, 0.5]])
    np.testing.assert_array_equal(grid, expected)


# ---------------------------------------------------------------------- CLI


def test_cli_builtin_source(tmp_path, capsys):
    code = main(["theory", "--source", "dsbs", "--param", "eps=0.2", "--out", str(tmp_path), "--lams", "3",
                 "--betas", "3", "--semantic-levels", "0.5", "--distortions", "2", "--seed", "1", "--quiet"])
    assert code == 0
    record = json.loads((tmp_path / "theory.json").read_text())
    assert record["seed"] == 1 and record["source"]["params"] == {"eps": 0.2}
    assert record["config"]["source"] == "dsbs"
    assert (tmp_path / "plots" / "rate_contour.png").exists()
    assert "theory.json" in capsys.readouterr().out


def test_cli_input_file(tmp_path):
    path = tmp_path / "source.npz"
    np.savez(path, p_xy=np.array([[0.4, 0.1], [0.1, 0.4]]), distortion=1.0 - np.eye(2))
    out = tmp_path / "out"
    assert main(["theory", "--input", str(path), "--out", str(out), "--lams", "3", "--betas", "3",
                 "--distortions", "2", "--semantic-levels", "0", "--quiet"]) == 0
    assert json.loads((out / "theory.json").read_text())["config"]["input"] == str(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "dsbs"], "--out DIR is required"),
        (["--out", "X"], "exactly one of --source"),
        (["--source", "nope", "--out", "X"], "unknown theory source"),
        (["--source", "dsbs", "--param", "eps", "--out", "X"], "KEY=VALUE"),
        (["--source", "dsbs", "--lams", "1", "--out", "X"], "n_lams"),
        (["--input", "BAD", "--out", "X"], "sums to"),
        (["--input", "MISSING.npz", "--out", "X"], "no such file"),
    ],
)
def test_cli_errors_exit_2(tmp_path, capsys, args, message):
    bad = tmp_path / "bad.npz"
    np.savez(bad, p_xy=np.eye(2), distortion=np.ones((2, 2)))
    args = [str(bad) if a == "BAD" else str(tmp_path / a) if a in ("X", "MISSING.npz") else a for a in args]
    assert main(["theory", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not (tmp_path / "X").exists()


def test_cli_lists_sources(capsys):
    assert main(["theory", "--list-sources"]) == 0
    out = capsys.readouterr().out
    assert "dsbs\t" in out and "fashion-mnist\t" in out and "eps=0.1" in out
