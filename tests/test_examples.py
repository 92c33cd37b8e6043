"""Every worked example in examples/ runs, passes its own checks and prints its key numbers.

Each example checks its claims with explicit raises (never assert), so they
are also run once under ``python -O``.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convkit.functional as F

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("[0-9]*.py"))

# Strings each example must print: the numbers it exists to show.
KEY_OUTPUT = {
    "01_one_by_one_conv": ["(1, 32, 28, 28)", "= 6144", "4,816,896", "(784, 192) @ (192, 32) = (784, 32)"],
    "02_depth_filter": ["1*2 + 5*3 = 17", "2*2 + 6*3 = 22", "3*2 + 7*3 = 27", "4*2 + 8*3 = 32",
                        "output (3, 2, 2)"],
    "03_rgb_filter": ["3*3*3 = 27 weights", "3*3*3*32 + 32 = 864 + 32 = 896", "32 maps of 6x6"],
    "04_conv2d_vs_conv3d": ["output (1, 4, 6, 14, 14)", "output (1, 4, 14, 14)", "(4, 1, 3, 3, 3)",
                            "(4, 8, 3, 3)"],
    "05_conv_as_matmul": ["(1, 27, 16)", "T is (4, 16)", "[303.0, 348.0, 483.0, 528.0]", "T is (8, 32)"],
    "06_output_size": ["(227 - 11 + 0 + 0)/4 + 1 = 55", "(32 - 5 + 2 + 2)/1 + 1 = 32",
                       "(28 - 5 + 2*0)/2 + 1 = 12.5 is not an integer", "(12, 12)"],
    "07_backprop": ["dilated by 2 -> (1, 3, 5, 5)", "finite difference", "F.conv_transpose(g, w, stride=2)"],
    "08_tf_mnist_layer": ["(32, 1, 5, 5)", "= 832", "(4, 14, 14, 32) = (N, 14, 14, 32)"],
    "09_fully_convolutional": ["fcn on 36x36: (1, 10, 3, 3)", "input.shape=(1, 5184)", "64 x 7 x 7 = 3136",
                               "neighbours 4 pixels apart"],
    "10_train_digits": ["30,762 parameters", "epoch 3:", "test accuracy"],
    "11_explain_a_layer": ["(28 - 5 + 2*0)/2 + 1 = 12.5", "y[0,1,2] = 8*1 + 0*0 + 12*0 + 0*(-1) = 8",
                           "sees (16, 16) pixels", "expects 3136 input features but receives 4096"],
}


def _needs(script):
    if script.stem.startswith("08") and not hasattr(F, "max_pool2d"):
        pytest.skip("convkit.functional has no max_pool2d yet (pool.py must be exported in functional/__init__.py)")


def _run(script, *flags):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, *flags, str(script)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_every_example_has_expectations():
    assert EXAMPLES, "no examples found"
    assert sorted(KEY_OUTPUT) == [s.stem for s in EXAMPLES]


@pytest.mark.parametrize("script", EXAMPLES, ids=[s.stem for s in EXAMPLES])
def test_example_runs_and_prints_its_numbers(script):
    _needs(script)
    r = _run(script)
    assert r.returncode == 0, f"{script.name} failed:\n{r.stdout}\n{r.stderr}"
    assert "OK:" in r.stdout.splitlines()[-1]
    for key in KEY_OUTPUT[script.stem]:
        assert key in r.stdout, f"{script.name} did not print {key!r}:\n{r.stdout}"


@pytest.mark.parametrize("script", EXAMPLES, ids=[s.stem for s in EXAMPLES])
def test_example_checks_survive_python_O(script):
    _needs(script)
    r = _run(script, "-O")
    assert r.returncode == 0, f"{script.name} failed under -O:\n{r.stdout}\n{r.stderr}"
    assert "OK:" in r.stdout


def test_example_docstring_states_the_question():
    for script in EXAMPLES:
        text = script.read_text()
        assert text.startswith('"""'), f"{script.name} has no module docstring"
        first = text[3:].splitlines()[0]
        assert first.rstrip().endswith("?"), f"{script.name}: docstring should open with the question: {first!r}"
        assert "assert " not in text, f"{script.name} uses assert; checks must raise SystemExit"


def test_convkit_demo_runs_an_example():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    r = subprocess.run([sys.executable, "-m", "convkit", "demo", "--only", "02_depth"], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "=== 02_depth_filter" in r.stdout and "1*2 + 5*3 = 17" in r.stdout
