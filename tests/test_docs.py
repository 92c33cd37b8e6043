"""The >>> examples in docs/*.md run and print what the page says.

Each ```python fence holding >>> prompts is one doctest; the fences of one
page share their names, top to bottom, as a reader's session would.
"""
import doctest
import re
from pathlib import Path

import pytest

import convkit

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def fenced_examples(text):
    """(line number of its first line, text) for every ```python fence with a >>> prompt."""
    for m in FENCE.finditer(text):
        if ">>>" in m.group(1):
            yield text.count("\n", 0, m.start(1)) + 1, m.group(1)


def test_docs_have_examples():
    assert DOCS, "docs/ has no .md files"
    assert any(list(fenced_examples(p.read_text())) for p in DOCS)


def test_fence_parser_finds_blocks():
    text = "intro\n```python\n>>> 1 + 1\n2\n```\n\n```python\nx = 1\n```\n```python\n>>> x = 3\n```\n"
    assert [line for line, _ in fenced_examples(text)] == [3, 11]


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_doc_examples(page):
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    globs = {"__name__": page.stem}
    report = []
    saved_limit = convkit.get_workspace_limit()
    try:
        for line, block in fenced_examples(page.read_text()):
            test = parser.get_doctest(block, globs, f"{page.name}:{line}", str(page), line - 1)
            test.globs = globs  # DocTest copies its globs; share them so later fences see earlier names
            runner.run(test, out=report.append, clear_globs=False)
    finally:
        convkit.set_workspace_limit(saved_limit)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page.name}:\n" + "".join(report)
