"""Every code block in README.md and docs/*.md works as written.

- ```python blocks run: those of one file in order, as one script (a reader follows a page
  top to bottom), in a fresh interpreter inside an empty directory;
- ```bash blocks: every `amago-fast ...` / `python -m amago_fast ...` command is parsed by
  the real CLI parser, so a renamed or removed flag fails here;
- ```toml / ```json blocks load, and config files (a "trainer" or "agent" table) build
  TrainerConfig / AgentConfig;
- a block whose info string says `fragment` (```python fragment) is part of something
  larger: Python fragments must still compile, commands in bash fragments must still parse.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)


def blocks(page: Path) -> list[tuple[str, bool, str, int]]:
    """(language, is_fragment, body, line number) of every fenced block of a page."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        words = m.group(1).split()
        lang = words[0] if words else ""
        out.append((lang, "fragment" in words[1:], m.group(2), text[: m.start()].count("\n") + 1))
    return out


def _ids(pages):
    return [str(p.relative_to(ROOT)) for p in pages]


def test_every_fence_is_labelled():
    for page in PAGES:
        for lang, _, _, line in blocks(page):
            assert lang, f"{page.name}:{line}: a code block without a language (python, bash, text, ...)"


PY_PAGES = [p for p in PAGES if any(lang == "python" and not frag for lang, frag, _, _ in blocks(p))]


@pytest.mark.parametrize("page", PY_PAGES, ids=_ids(PY_PAGES))
def test_python_blocks_run(page, tmp_path):
    parts = [
        f"# --- {page.name}:{line}\n{body}" for lang, frag, body, line in blocks(page) if lang == "python" and not frag
    ]
    script = tmp_path / "page.py"
    script.write_text("\n".join(parts))
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    r = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )
    assert r.returncode == 0, f"{page.name}: its python blocks fail as written:\n{r.stderr[-3000:]}"


def test_python_fragments_compile():
    for page in PAGES:
        for lang, frag, body, line in blocks(page):
            if lang == "python" and frag:
                compile(body, f"{page.name}:{line}", "exec")


def _cli_commands(body: str) -> list[list[str]]:
    """Argument lists of the amago-fast invocations in a shell block (comments dropped)."""
    cmds = []
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, w in enumerate(words):
            if w == "amago-fast":
                cmds.append(words[i + 1 :])
                break
            if w == "amago_fast" and i > 0 and words[i - 1] == "-m":
                cmds.append(words[i + 1 :])
                break
    return cmds


def test_cli_commands_in_docs_parse():
    from amago_fast.cli import build_parser

    seen = 0
    for page in PAGES:
        for lang, _, body, line in blocks(page):
            if lang not in ("bash", "sh", "shell", "console"):
                continue
            for args in _cli_commands(body):
                seen += 1
                try:
                    build_parser().parse_args(args)
                except SystemExit as e:  # --version / --help exit 0 after printing
                    if e.code in (0, None):
                        continue
                    pytest.fail(f"{page.name}:{line}: `amago-fast {' '.join(args)}` does not parse (exit {e.code})")
    assert seen >= 5  # the README's first run alone has three


def test_config_blocks_load():
    from amago_fast.agent import AgentConfig
    from amago_fast.trainer import TrainerConfig

    for page in PAGES:
        for lang, frag, body, line in blocks(page):
            if lang not in ("toml", "json") or frag:
                continue
            if lang == "json":
                data = json.loads(body)
            else:
                tomllib = pytest.importorskip("tomllib")
                data = tomllib.loads(body)
            if isinstance(data, dict) and {"trainer", "agent"} & set(data):
                TrainerConfig.from_dict(data.get("trainer", {}))
                AgentConfig.from_dict(data.get("agent", {}))


def test_cli_command_extraction():
    body = "amago-fast train --run-dir x  # comment\ntorchrun --nproc-per-node 2 -m amago_fast eval \\\n --run-dir y\npip install ."
    assert _cli_commands(body) == [["train", "--run-dir", "x"], ["eval", "--run-dir", "y"]]
