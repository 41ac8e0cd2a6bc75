"""Text for people: help that renders, Markdown that a real renderer reads as tables, wording.

The Markdown is parsed with markdown-it-py (CommonMark with GFM tables, what GitHub renders);
names from files hold Markdown and HTML specials and must come back as the same text.
"""

from __future__ import annotations

import pytest
import torch
from markdown_it import MarkdownIt
from safetensors.torch import save_file

from conftest import SAMPLES, run_cli

HOSTILE_NAME = "enc|oder*[x](y)<b>`q`$a$_"


def commands():
    import typer

    from rnngrad.cli.app import app

    group = typer.main.get_command(app)
    return {name: command for name, command in group.commands.items()}


@pytest.mark.parametrize("name", ["inspect", "spectrum", "bptt", "check"])
def test_every_option_has_help(name):
    command = commands()[name]
    for param in command.params:
        if param.param_type_name == "option":
            assert (param.help or "").strip(), f"{name} {param.opts} has no help"


@pytest.mark.parametrize("args,needles", [
    (["bptt", "--help"], ["[h; c]", "rnngrad[plot]", "[tool.rnngrad]", "[default: 16]",
                          "[default: auto]"]),
    (["check", "--help"], ["[tool.rnngrad]", "[default: 0.05]", "[default: 10]"]),
    (["spectrum", "--help"], ["[default: 5]", "[default: 8]"]),
])
def test_help_renders_brackets_as_text(args, needles):
    result = run_cli(*args, env={"COLUMNS": "200"})
    assert result.returncode == 0
    for needle in needles:
        assert needle in result.stdout, needle


def test_bare_command_prints_help_and_usage_errors_name_the_command():
    bare = run_cli()
    assert bare.returncode == 0 and "Commands" in bare.stdout and bare.stderr == ""
    missing = run_cli("bptt", "--lags")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "see `rnngrad bptt --help`" in missing.stderr and ".;" not in missing.stderr


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory):
    """A GRU whose module name holds Markdown, HTML and pipe characters."""
    folder = tmp_path_factory.mktemp("md")
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4)
    path = folder / "m.safetensors"
    save_file({f"{HOSTILE_NAME}.{k}": v.contiguous() for k, v in gru.state_dict().items()},
              str(path))
    return path


def rendered_tables(text: str) -> list[list[list[str]]]:
    """Every table markdown-it-py sees, as rows of cell texts (header row first)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables, rows, row, inside = [], [], [], False
    for token in tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            inside, cell = True, []
        elif token.type in ("th_close", "td_close"):
            inside = False
            row.append("".join(cell))
        elif token.type == "inline" and inside:
            cell.append("".join(child.content for child in token.children or ()
                                if child.type in ("text", "code_inline")))
        elif token.type == "tr_close":
            rows.append(row)
        elif token.type == "table_close":
            tables.append(rows)
    return tables


@pytest.mark.parametrize("command", ["inspect", "spectrum", "bptt"])
def test_markdown_renders_as_tables_with_file_text_intact(hostile_model, command):
    extra = ["--lags", "1..5", "--batch", "2"] if command == "bptt" else []
    result = run_cli(command, hostile_model, "-f", "markdown", *extra)
    assert result.returncode == 0, result.stderr
    tables = rendered_tables(result.stdout)
    assert tables
    for rows in tables:
        assert len({len(row) for row in rows}) == 1, rows  # no row split by a stray pipe
    cells = [cell for rows in tables for row in rows for cell in row]
    assert any(cell.startswith(HOSTILE_NAME) for cell in cells), cells
    html = MarkdownIt("commonmark").enable("table").render(result.stdout)
    assert "<b>" not in html and "<em>" not in html  # no markup from the file


def test_check_markdown_renders(tmp_path):
    result = run_cli("check", SAMPLES / "elman_exploding.safetensors",
                     SAMPLES / "lstm_2layer.pt", "--explode-above", "1e3", "--batch", "2",
                     "-f", "markdown")
    tables = rendered_tables(result.stdout)
    assert [rows[0] for rows in tables] == [
        ["model", "recurrence", "threshold", "value", "limit", "result", "meaning"],
        ["model", "recurrence", "ρ", "γσ_max", "log10 norm last", "verdict"]]
    assert len(tables[0]) == 1 + 3  # header + 3 recurrences × 1 threshold


def test_quiet_leaves_the_notes_out(tmp_path):
    loud = run_cli("inspect", SAMPLES / "lstm_2layer.pt")
    quiet = run_cli("inspect", SAMPLES / "lstm_2layer.pt", "--quiet")
    assert "note:" in loud.stdout and "note:" not in quiet.stdout


def test_words_follow_the_verdict():
    vanishing = " ".join(run_cli("bptt", SAMPLES / "elman_vanishing.safetensors", "--batch",
                                 "2").stdout.split())
    assert "most persistent direction" in vanishing and "exploding direction" not in vanishing
    growing = " ".join(run_cli("bptt", SAMPLES / "elman_exploding.safetensors", "--lags",
                               "1..40", "--batch", "2").stdout.split())
    assert "healthy" in growing and "but growing ×1.0" in growing
    assert "crosses explode-above (10000) near lag" in growing
