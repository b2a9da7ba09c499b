"""Targets and report on hand-made records: verdicts follow the numbers; analog systems have no rate."""

from tosc.evaluation import write_report
from tosc.evaluation.targets import check_targets, format_checks, is_classic
from tosc.results import ChannelSpec, RateSpec, ResultRecord


def _rec(system, snr, cbr, bpp, psnr, acc, mode="digital", failure=0.0, mlp=0.8, seg=0.9):
    return ResultRecord(system=system, dataset="fashion-mnist", split="test", n_images=10,
                        channel=ChannelSpec("awgn", snr), rate=RateSpec(bpp=bpp, payload_bits_per_image=bpp * 784,
                                                                       channel_uses_per_image=784 * cbr, cbr=cbr),
                        metrics={"psnr_db": psnr, "accuracy": acc, "accuracy_classifier-mlp": mlp,
                                 "accuracy_classifier-resnet": mlp, "seg_iou": seg, "failure_rate": failure},
                        config={"mode": mode}, versions={}, git_commit="0" * 40)


def _records(tosc_psnr=24.0, tosc_acc=0.85, tosc_seg=0.95, tosc_mlp=0.82):
    out = []
    for snr, scale in ((5, 1.0), (15, 2.0)):
        for cbr in (0.125, 0.25):
            r = scale * cbr
            out += [_rec("tosc-sr+ldpc", snr, cbr, r, tosc_psnr + r, tosc_acc, seg=tosc_seg,
                         mlp=tosc_mlp),
                    _rec("mse-only+ldpc", snr, cbr, r, 23.0 + r, 0.80, seg=0.93),
                    _rec("webp-payload+ldpc", snr, cbr, 2 * r, 21.0 + r, 0.70, failure=0.5 if snr == 5 else 0.0),
                    _rec("tosc-sr+ideal", snr, cbr, 1.2 * r, tosc_psnr + 1 + r, 0.9, mode="ideal"),
                    _rec("deep-jscc", snr, cbr, 0.0, 22.0 + snr / 10, 0.75, mode="analog")]
    return out


def test_classic_names():
    assert is_classic("webp-payload+ldpc") and is_classic("vvc+ideal")
    assert not is_classic("tosc-sr+ldpc") and not is_classic("deep-jscc")


def test_verdicts_follow_the_numbers():
    a, b, c = check_targets(_records())
    assert (a.passed, b.passed, c.passed) == (True, True, True)
    assert len(a.details) == 4 and "no classic system decodes" in a.details[0]  # webp fails at 5 dB
    assert len(b.details) == 2  # CBR 1/8 only
    a, b, c = check_targets(_records(tosc_psnr=22.5, tosc_acc=0.80, tosc_seg=0.90, tosc_mlp=0.78))
    assert (a.passed, b.passed, c.passed) == (False, False, False)
    assert "FAIL" in format_checks([a])
    # the ideal link is a bound, not a baseline: its higher accuracy does not fail target (b)
    assert all("ideal" not in d for d in b.details)
    assert check_targets([r for r in _records() if r.system != "tosc-sr+ldpc"])[0].passed is None


def test_report_with_an_analog_system(tmp_path):
    records = _records()
    html = write_report(tmp_path, records).read_text()
    assert "deep-jscc" in html and ">NA<" in html and "BD-rate %" in html and "(a) PASS" in html
    plots = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert "seg_iou_vs_snr_awgn_cbr0.125.png" in plots and "psnr_db_vs_cbr_awgn_snr15.png" in plots
    assert "psnr_db_vs_bpp_awgn.png" in plots


def test_summary_says_who_wins_where(tmp_path):
    from tosc.evaluation.summary import losses, win_counts, win_map

    records = _records()
    # at 15 dB, CBR 1/4 a baseline beats TOSC-SR on PSNR; the ideal link (a bound) never counts
    for r in records:
        if r.system == "mse-only+ldpc" and r.channel.snr_db == 15 and r.rate.cbr == 0.25:
            r.metrics["psnr_db"] = 30.0
    cells = win_map(records, "psnr_db")
    assert len(cells) == 4 and all(c.proposed == "tosc-sr+ldpc" for c in cells)
    lost = losses(records, "psnr_db")
    assert [(c.snr_db, c.cbr, c.baseline) for c in lost] == [(15, 0.25, "mse-only+ldpc")]
    assert lost[0].margin == records[0].metrics["psnr_db"] - records[0].metrics["psnr_db"] + (24.0 + 0.5 - 30.0)
    assert win_counts(records, "psnr_db") == (3, 4)
    html = write_report(tmp_path, records).read_text()
    assert "At a glance" in html and "lead at 3 of 4 points" in html
    assert html.index("At a glance") < html.index("<h2>Results</h2>")  # the summary comes first
    plots = {p.name for p in (tmp_path / "plots").glob("panel_*.png")}
    assert {"panel_psnr_db_vs_snr.png", "panel_psnr_db_vs_cbr.png", "panel_seg_iou_vs_snr.png"} <= plots


def test_every_system_of_the_full_grid_gets_its_own_line_style():
    # the full grid draws 20 systems in one panel: the old 10-colour cycle gave two systems the same
    # colour and marker (tosc-sr-v3+ldpc and mse-only+ldpc, as they were named, looked alike)
    from tosc.demo import full_systems
    from tosc.evaluation.report import system_styles

    systems = full_systems()
    modes = {s: ("ideal" if s.endswith(("+ideal", "+fbl")) else "analog" if "ldpc" not in s else "digital")
             for s in systems}
    styles = system_styles(modes)
    looks = {(st["color"], st["marker"], st["linestyle"]) for st in styles.values()}
    assert len(looks) == len(systems) >= 10
    assert styles["tosc-sr+ldpc"]["linewidth"] > styles["mse-only+ldpc"]["linewidth"]
    assert styles["tosc-sr+ideal"]["linestyle"] == "--" and styles["deep-jscc"]["marker"] != styles["mse-only+ldpc"]["marker"]
