"""benchmarks/ops_suite.py runs every op, forward and backward, and prints one line each."""
import importlib.util
import os

_DIR = os.path.join(os.path.dirname(__file__), "..", "benchmarks")


def test_ops_suite_runs_every_op(capsys, monkeypatch):
    monkeypatch.syspath_prepend(_DIR)
    spec = importlib.util.spec_from_file_location("ops_suite", os.path.join(_DIR, "ops_suite.py"))
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    monkeypatch.setattr(suite, "interleaved", lambda runs, repeats: {k: [fn() or 0.001] for k, fn in runs.items()})
    suite.main(["--repeats", "1", "--shape", "2,8,6,6"])
    lines = capsys.readouterr().out.splitlines()
    names = list(suite.cases(8))
    assert [line.split("  ")[0].strip() for line in lines[2:2 + len(names)]] == names
    for line in lines[2:2 + len(names)]:
        assert float(line.split()[-1 if suite.torch is None else -3]) > 0
