"""Every ```python block of README.md and docs/*.md runs.

One case per markdown file: its blocks run in order in one fresh namespace (a later block may
use the names of an earlier one), with the repository root as working directory. A block whose
fence is directly preceded by ``<!-- snippet: skip (reason) -->`` is not run; keep that for
blocks that cannot run in a test (hours of training, data sets outside the repository).
"""

import dataclasses
import re
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

_OPEN = re.compile(r"^(\s*)```python\s*$")
_CLOSE = re.compile(r"^\s*```\s*$")
_SKIP = re.compile(r"^\s*<!--\s*snippet:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced python block: its first code line (1-based) in the file, code, skip reason."""

    path: Path
    line: int
    code: str
    skip: str | None


class SnippetError(AssertionError):
    """A documentation block raised; the message names the file, line and exception."""


def collect_blocks(path):
    """The ```python blocks of the markdown file ``path``, in order."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opened = _OPEN.match(lines[i])
        if opened is None:
            i += 1
            continue
        skip = _SKIP.match(lines[i - 1]) if i > 0 else None
        indent, start = len(opened.group(1)), i + 1
        end = start
        while end < len(lines) and not _CLOSE.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: ```python block is never closed")
        # Blocks inside list items are indented like their fence.
        code = "\n".join(line[indent:] for line in lines[start:end])
        blocks.append(Block(Path(path), start + 1, code, skip.group("reason") if skip else None))
        i = end + 1
    return blocks


def run_blocks(path):
    """Run the blocks of ``path`` in one namespace; returns the number of blocks run.

    Raises SnippetError naming the file, the failing block's first line and the exception.
    """
    namespace = {"__name__": "__doc_snippets__"}
    ran = 0
    for block in collect_blocks(path):
        if block.skip is not None:
            continue
        # Leading newlines keep the traceback's line numbers equal to the markdown file's.
        source = "\n" * (block.line - 1) + block.code
        try:
            exec(compile(source, str(block.path), "exec"), namespace)
        except Exception as error:
            name = block.path.relative_to(REPO_ROOT) if block.path.is_relative_to(REPO_ROOT) else block.path
            raise SnippetError(
                f"{name}: the block starting at line {block.line} failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        ran += 1
    return ran


@pytest.mark.parametrize("path", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_doc_snippets_run(path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    before = torch.get_default_dtype()
    run_blocks(path)
    assert torch.get_default_dtype() == before, f"{path.name} changed torch's default dtype"


def test_collector_finds_blocks_and_runner_fails_on_error(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# t\n\n```python\nx = 2\n```\n\n```bash\nexit 1\n```\n\n"
        "<!-- snippet: skip (needs hours) -->\n```python\nraise RuntimeError\n```\n\n"
        "- item\n\n  ```python\n  y = x + 1\n  ```\n",
        encoding="utf-8",
    )
    blocks = collect_blocks(doc)
    assert [(b.line, b.code, b.skip) for b in blocks] == [
        (4, "x = 2", None),
        (13, "raise RuntimeError", "needs hours"),
        (19, "y = x + 1", None),
    ]
    assert run_blocks(doc) == 2

    doc.write_text("text\n\n```python\nok = 1\n```\n\n```python\nraise ValueError('boom')\n```\n")
    with pytest.raises(SnippetError, match=r"doc\.md: the block starting at line 8 failed: ValueError: boom"):
        run_blocks(doc)


def test_every_doc_file_has_blocks_collected():
    # Guards against a collector that silently finds nothing.
    counts = {p.name: len(collect_blocks(p)) for p in DOC_FILES}
    assert counts["README.md"] >= 4, counts
    assert sum(counts.values()) >= 10, counts
