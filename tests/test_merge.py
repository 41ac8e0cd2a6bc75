"""Sharding ``rnngrad check`` over CI jobs and ``rnngrad merge``: the merged report is the one a
single run writes (JSON compared field by field), with its exit code."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SAMPLES, run_cli
from rnngrad.errors import OptionError
from rnngrad.gate.merge import merge_reports, parse_shard, shard_of
from rnngrad.gate.results import CheckReport

QUICK = ("--lags", "1..8", "--batch", "2", "--steps", "8", "--jobs", "1", "-q")
NAMES = ["elman_exploding.safetensors", "elman_vanishing.safetensors",
         "gru_bidirectional.safetensors"]


@pytest.fixture
def folder(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for index, name in enumerate(NAMES):
        shutil.copy(SAMPLES / name, models / f"step_{index + 1}.safetensors")
    return models


def shards(folder, count, *extra):
    paths = []
    for index in range(1, count + 1):
        path = folder.parent / f"shard_{index}.json"
        result = run_cli("check", str(folder), *QUICK, *extra, "--shard", f"{index}/{count}",
                         "--format", "json", "--output", str(path))
        assert result.returncode in (0, 1), result.stderr
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("count", [2, 4])  # 4 shards of 3 models: one shard is empty
def test_merged_shards_are_the_single_run(folder, count):
    extra = ("--explode-above", "2", "--vanish-below", "1e-3")
    single = run_cli("check", str(folder), *QUICK, *extra, "--format", "json")
    merged = run_cli("merge", *shards(folder, count, *extra), "--format", "json")
    assert merged.returncode == single.returncode == 1
    assert json.loads(merged.stdout) == json.loads(single.stdout)
    never = run_cli("merge", *shards(folder, count, *extra), "--fail-on", "never")
    assert never.returncode == 0 and "explode-above" in never.stdout


def test_shards_checked_against_other_thresholds_do_not_merge(folder):
    first = shards(folder, 2, "--explode-above", "2")
    other = folder.parent / "other.json"
    run_cli("check", str(folder), *QUICK, "--explode-above", "5", "--shard", "2/2",
            "--format", "json", "--output", str(other))
    result = run_cli("merge", first[0], str(other))
    assert result.returncode == 2
    assert "other thresholds" in result.stderr and len(result.stderr.splitlines()) == 1


def test_what_merge_refuses(tmp_path):
    text = tmp_path / "notes.json"
    text.write_text("not json")
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"error": {"message": "m.pt: unreadable", "hint": "h"}}))
    bare_error = tmp_path / "bare_error.json"
    bare_error.write_text(json.dumps({"error": "x"}))
    thin = tmp_path / "thin.json"
    thin.write_text(json.dumps({"command": "check", "thresholds": []}))
    spectrum = tmp_path / "spectrum.json"
    spectrum.write_text(run_cli("spectrum", str(SAMPLES / "elman_exploding.safetensors"),
                                "--format", "json").stdout)
    for path, words in ((text, "not JSON"), (failed, "stopped with an error"),
                        (spectrum, "not a rnngrad check report"),
                        (bare_error, "stopped with an error"),
                        (thin, "not a rnngrad check report"),
                        (tmp_path / "missing.json", "no such file")):
        result = run_cli("merge", str(path))
        assert result.returncode == 2 and words in result.stderr, (path, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    with pytest.raises(OptionError):
        merge_reports([])


def test_check_report_round_trips_through_json(folder):
    result = run_cli("check", str(folder), *QUICK, "--explode-above", "2", "--format", "json")
    data = json.loads(result.stdout)
    assert CheckReport.from_dict(data).to_dict() == data


@pytest.mark.parametrize("text,expected", [("1/1", (1, 1)), ("3/4", (3, 4)), (" 2 / 5 ", (2, 5))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/3", "4/3", "1", "a/b", "1/0", "-1/2"])
def test_bad_shards_are_option_errors(text):
    with pytest.raises(OptionError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize("models,count", [(10, 3), (3, 4), (7, 7), (0, 2), (1000, 16)])
def test_shards_cover_every_model_once_in_order(models, count):
    names = [f"m{index}" for index in range(models)]
    parts = [shard_of(names, (index, count)) for index in range(1, count + 1)]
    assert [name for part in parts for name in part] == names
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_the_shell_recipe_in_the_docs_runs(folder, monkeypatch):
    """docs/performance.md's shard-by-shard recipe, its commands as written (made quick)."""
    import re
    import shlex

    from conftest import ROOT

    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1).replace("\\\n", " ")
    check = next(line.strip() for line in block.splitlines() if "rnngrad check" in line)
    merge = next(line.strip() for line in block.splitlines() if "rnngrad merge" in line)
    monkeypatch.chdir(folder.parent)
    for k in (1, 2, 3):
        args = shlex.split(check.replace("$k", str(k)).replace("checkpoints/", str(folder)))[1:]
        assert run_cli(*args, *QUICK).returncode == 0
    result = run_cli(*shlex.split(merge)[1:])
    assert result.returncode == 0 and "all 4 checks passed" in result.stdout  # 3 models, 4 rnns


def test_shards_of_one_configuration_with_overrides_merge(folder):
    """A per-model override that matches the first model of one shard only: the shards still
    name the thresholds of the configuration they share, so they merge into the single run."""
    config = folder.parent / "pyproject.toml"
    config.write_text('[tool.rnngrad]\nexplode-above = 2.0\nvanish-below = 1e-3\n\n'
                      '[[tool.rnngrad.overrides]]\npath = "*step_2*"\nexplode-above = 50.0\n')
    extra = ("--config", str(config))
    single = run_cli("check", str(folder), *QUICK, *extra, "--format", "json")
    merged = run_cli("merge", *shards(folder, 2, *extra), "--format", "json")
    assert merged.returncode == single.returncode, merged.stderr
    assert json.loads(merged.stdout) == json.loads(single.stdout)
    assert json.loads(merged.stdout)["thresholds"]["explode-above"] == 2.0


def test_merge_never_writes_over_a_report_it_reads(folder):
    paths = shards(folder, 2, "--explode-above", "2")
    before = [open(path, "rb").read() for path in paths]
    result = run_cli("merge", *paths, "--format", "json", "--output", paths[1])
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--output" in result.stderr
    assert [open(path, "rb").read() for path in paths] == before
