"""The >>> examples in every convkit module's docstrings run and print what they say."""
import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import convkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(convkit.__path__, "convkit.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    report = []
    for test in finder.find(module, name, globs={"np": np, **vars(module)}):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
