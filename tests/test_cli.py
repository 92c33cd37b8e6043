"""The convkit command: info and demo, and one-line errors."""
import subprocess
import sys
from pathlib import Path

from convkit import cli

ROOT = Path(__file__).resolve().parents[1]


def test_info_reports_blas(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("numpy", "blas", "core type", "threads", "workspace"):
        assert key in out


def test_python_dash_m(tmp_path):
    r = subprocess.run([sys.executable, "-m", "convkit", "info"], capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert r.returncode == 0, r.stderr
    assert "convkit" in r.stdout


def test_demo_runs_one_example(capsys):
    assert cli.main(["demo", "--only", "02_"]) == 0
    assert "17" in capsys.readouterr().out


def test_bad_command_exits_2(capsys):
    try:
        cli.main(["nonsense"])
    except SystemExit as e:
        assert e.code == 2
