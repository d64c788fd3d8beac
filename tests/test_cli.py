"""The `optlab` command, run in-process through `keras_optlab.cli.main`."""

import sys

import pytest

from keras_optlab.cli import main


@pytest.mark.parametrize(
    "argv", [["--help"], ["race", "--help"], ["tune", "--help"], ["figures", "--help"], ["curvature", "--help"]]
)
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: optlab" in capsys.readouterr().out


def test_no_command_prints_help():
    assert main([]) == 2


def test_bad_epochs_is_rejected(capsys):
    with pytest.raises(SystemExit) as info:
        main(["race", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["tune", "--trials", "0"], "--trials"),
        (["tune", "--depth", "two"], "--depth"),
        (["tune", "--learning-rate", "-0.1"], "--learning-rate"),
        (["tune", "--learning-rate", "inf"], "--learning-rate"),
        (["curvature", "m.keras", "d.npz", "--k", "0"], "--k"),
    ],
)
def test_bad_counts_and_rates_are_rejected(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert option in capsys.readouterr().err


def test_tune_help_shows_the_search_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    out = capsys.readouterr().out
    assert "default 24" in out and "runs/tune" in out and "{random,bayesian,hyperband}" in out


def test_race_quick_writes_table_and_curves(tmp_path, capsys):
    out = tmp_path / "race"
    assert main(["race", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = (out / "race.md").read_text()
    for name in ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "NesterovRMSProp", "Adam"):
        assert f"| {name} |" in printed and f"| {name} |" in report
    assert "3 epochs" in report and "loss_curves.png" in report
    png = (out / "loss_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_missing_lab_extra_is_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    assert main(["race", "--quick", "--out", str(tmp_path)]) == 1
    assert "pip install keras-optlab[lab]" in capsys.readouterr().err
