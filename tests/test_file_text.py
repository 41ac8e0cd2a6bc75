"""File text is data, never markup or terminal control (issue 17, item 3).

A model whose tensor names, metadata and file name carry Rich markup (``[/oops]``,
``[link=...]``), terminal escape sequences, a newline followed by a GitHub workflow command,
bidi overrides and matplotlib mathtext (``$\\frac{$``) goes through every command and format.
What reaches the terminal or a file must hold no control characters, show the names as the
text they are, and stay valid in its format (JUnit XML 1.0 allows no control characters; a
GitHub workflow command ends at a newline).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from safetensors.numpy import save, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402
from inprocess import invoke  # noqa: E402

# The module name every tensor of the RNN gets: Rich markup and a live-link attempt, CSI and
# OSC escape sequences, BEL, a newline that would start a new workflow command, a bidi
# override, mathtext, Markdown/HTML that would render (an image, a link, a table pipe).
EVIL = ("x[/oops][link=https://evil.example]L[/link]\x1b[2J\x1b]8;;https://e.x\x07"
        "\n::error::injected\u202e$\\frac{$<img src=x onerror=alert(1)>"
        "[click](https://evil.example)|")
EVIL_FILE = "evil[red][link=x]\x1b[31m$\\frac{$\udcff.safetensors"
# What no output may contain: C0 controls but newline and tab, DEL, C1, bidi controls.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FAST = ["--lags", "1..3", "--steps", "20", "--batch", "2", "-q"]


@pytest.fixture(scope="module")
def evil_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("text")
    tensors = {f"{EVIL}.{name.removeprefix(corpus.PREFIX)}": value
               for name, value in corpus.valid_state_dict_numpy().items()}
    tensors["unused[/b]\x1b[31m\n::warning::x"] = np.zeros(2, np.float32)
    path = folder / EVIL_FILE  # \udcff: the byte 0xff of a name that is not UTF-8
    with open(os.fsencode(path), "wb") as handle:
        handle.write(save(tensors, metadata={"a[/x]\x1b[1m": "v[link=x]\x1b]0;title\x07"}))
    return path


def _clean(text: str) -> None:
    found = CONTROL.findall(text)
    assert not found, f"control characters reached the output: {found!r}"


COMMANDS = {
    "inspect": ["inspect"],
    "spectrum": ["spectrum"],
    "bptt": ["bptt", *FAST],
    "check": ["check", "--explode-above", "1e-9", *FAST],
}
FORMATS = {"inspect": ("table", "json", "markdown"), "spectrum": ("table", "json", "markdown"),
           "bptt": ("table", "json", "markdown"),
           "check": ("table", "json", "markdown", "github", "junit")}


def _markdown_is_inert(text: str) -> None:
    """No HTML, no link, no math, no broken table: the names render as their text."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in html and 'href="https://evil.example"' not in html
    outside_code = re.sub(r"(`+)(?:(?!\1).)+\1", "", text)
    assert not re.search(r"(?<!\\)\$", outside_code), "an unescaped $ would start math"
    for block in re.findall(r"(?:^\|.*\|\n)+", text, flags=re.M):
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in block.splitlines()}
        assert len(widths) == 1, f"a row of this table has a different number of cells:\n{block}"


@pytest.mark.parametrize("command,fmt", [(c, f) for c in COMMANDS for f in FORMATS[c]])
def test_names_are_shown_as_text_in_every_format(evil_model, command, fmt):
    head, *rest = COMMANDS[command]
    outcome = invoke(head, evil_model, *rest, "--format", fmt)
    assert outcome.code in (0, 1), outcome
    _clean(outcome.stdout)
    _clean(outcome.stderr)
    if fmt == "json":
        text = json.dumps(json.loads(outcome.stdout))
        assert json.dumps(EVIL)[1:-1] in text  # the name itself, escaped only by JSON
    elif fmt == "table":
        assert "[/oops]" in outcome.stdout and "[/link]" in outcome.stdout  # not markup
    elif fmt == "markdown":
        _markdown_is_inert(outcome.stdout)
    elif fmt == "junit":
        ElementTree.fromstring(outcome.stdout.encode())  # well-formed XML 1.0
    elif fmt == "github":
        lines = outcome.stdout.splitlines()
        assert all(line.startswith(("::error ", "::notice ")) for line in lines), lines
        assert not any(line.startswith("::error::injected") for line in lines)


@pytest.mark.parametrize("command", ["spectrum", "bptt", "check"])
def test_terminal_pictures_hold_no_control_characters(evil_model, command):
    pytest.importorskip("plotext")
    head, *rest = COMMANDS[command]
    outcome = invoke(head, evil_model, *rest, "--plot", "term")
    assert outcome.code in (0, 1), outcome
    _clean(outcome.stdout)


@pytest.mark.parametrize("command", ["spectrum", "bptt", "check"])
def test_mathtext_in_names_cannot_break_a_picture(evil_model, command, tmp_path):
    pytest.importorskip("matplotlib")
    head, *rest = COMMANDS[command]
    picture = tmp_path / f"{command}.svg"
    outcome = invoke(head, evil_model, *rest, "--plot", picture)
    assert outcome.code in (0, 1), outcome
    assert picture.read_bytes().startswith(b"<?xml")


def test_an_error_about_file_text_is_one_plain_line(evil_model, tmp_path):
    """stderr: the tensor name of a NaN weight, through the one-line error."""
    tensors = {f"{EVIL}.{name.removeprefix(corpus.PREFIX)}": value
               for name, value in corpus.valid_state_dict_numpy().items()}
    tensors[f"{EVIL}.weight_hh_l0"][1, 1] = np.nan
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken))
    for command in ("inspect", "spectrum"):
        outcome = invoke(command, broken)
        assert outcome.code == 2, outcome
        _clean(outcome.stderr)
        assert len(outcome.stderr.splitlines()) == 1
        assert "[/oops]" in outcome.stderr and "NaN" in outcome.stderr


def test_a_progress_label_is_plain():
    from rnngrad.render.text import plain

    assert plain(EVIL) == plain(plain(EVIL))
    assert not CONTROL.search(plain(EVIL + "\udcff\ufffe"))
