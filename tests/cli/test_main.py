"""The command line: --version, the commands' help, errors as messages with exit status 2."""

import logging

import pytest

import diffranet
from diffranet.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"diffranet {diffranet.__version__}"


@pytest.mark.parametrize("command", [["demo"], ["train"], ["search", "classic"], ["dataset"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main(command + ["--help"])
    assert stop.value.code == 0
    assert "usage: diffranet " + " ".join(command) in capsys.readouterr().out


def test_parallelism_options_follow_the_convention():
    parser = build_parser()
    args = parser.parse_args(["train", "--features", "glcm", "--model", "rf", "--data", "d", "--out", "m",
                              "--n-jobs", "2"])
    assert args.n_jobs == 2
    assert parser.parse_args(["dataset", "--out", "d", "--workers", "3"]).workers == 3


def test_library_errors_become_messages(tmp_path, capsys):
    (tmp_path / "trials.pkl").write_bytes(b"")
    argv = ["search", "classic", "--data", str(tmp_path), "--max-evals", "1", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffranet search: error:") and "--resume" in err


def test_progress_messages_go_to_the_current_stderr(tmp_path, capsys):
    assert main(["dataset", "--info", str(tmp_path)]) == 2  # an error, after setting up the handler
    capsys.readouterr()
    logging.getLogger("diffranet.dataset.generate").info("progress line")
    assert "diffranet: progress line" in capsys.readouterr().err


def test_the_parser_loads_no_heavy_library():
    """Every command builds the whole parser first: it must not import torch, scikit-learn or matplotlib
    (seconds of start-up for `diffranet --help` and every command that needs none of them)."""
    import subprocess
    import sys

    code = ("import sys; from diffranet.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_evaluate_refuses_a_bad_hit_threshold(tmp_path, capsys):
    status = main(["evaluate", "--model", "default", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                   "--hit-threshold", "1.5"])
    assert status == 2 and "--hit-threshold" in capsys.readouterr().err and not (tmp_path / "r").exists()
