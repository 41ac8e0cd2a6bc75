"""Pictures (``rnngrad[plot]``): what the files hold, that they are deterministic, the errors.

Skipped as a whole without matplotlib; the terminal tests also need plotext. The SVGs are
written with glyphs as paths, and matplotlib puts each text in a comment beside its glyphs,
so the tests read titles and legend entries from those comments.
"""

from __future__ import annotations

import dataclasses
import html
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

import rnngrad  # noqa: E402
from rnngrad.bptt import BpttOptions, bptt  # noqa: E402
from rnngrad.gate.results import CheckResult  # noqa: E402
from rnngrad.bptt.clipping import recommend  # noqa: E402
from rnngrad.errors import OptionError  # noqa: E402
from rnngrad.io import load  # noqa: E402
from rnngrad.plots import check_target, save_plot  # noqa: E402
from rnngrad.probes import ProbeSpec  # noqa: E402
from conftest import SAMPLES  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = ProbeSpec(batch=4, steps=30, burn_in=10, seed=0)


@dataclasses.dataclass(frozen=True)
class FakeCheck:
    results: tuple[CheckResult, ...]
    command: str = "check"


def _result(model, recurrence, threshold, value, limit, passed):
    return CheckResult(model=model, recurrence=recurrence, threshold=threshold, value=value,
                       limit=limit, passed=passed, message="")


CHECK = FakeCheck(results=(
    _result("a.safetensors", "rnn L0", "max norm", 1.4e4, 1e4, False),
    _result("a.safetensors", "encoder L0", "max norm", 0.8, 1e4, True),
    _result("b.pt", "encoder L1", "max norm", None, 1e4, False),
    _result("b.pt", "encoder L1", "log10 rate", -0.3, 0.0, True),
))


@pytest.fixture(scope="module")
def gru_path() -> Path:
    return SAMPLES / "gru_bidirectional.safetensors"


@pytest.fixture(scope="module")
def gru_spectrum(gru_path):
    return rnngrad.spectrum(gru_path)


@pytest.fixture(scope="module")
def gru_values(gru_path):
    """The spectrum with every eigenvalue and singular value kept (what --plot asks for)."""
    return rnngrad.spectrum(gru_path, values=True)


@pytest.fixture(scope="module")
def elman_spectrum():
    return rnngrad.spectrum(SAMPLES / "elman_exploding.safetensors")


@pytest.fixture(scope="module")
def elman_bptt():
    return bptt(SAMPLES / "elman_exploding.safetensors", BpttOptions(lags="1..30", probe=SMALL))


@pytest.fixture(scope="module")
def lstm_bptt():
    return bptt(SAMPLES / "lstm_2layer.pt",
                BpttOptions(lags="log:1..30:6", probe=SMALL, clip_rule="autoclip"))


def svg_texts(path: Path) -> tuple[ET.Element, list[str]]:
    """The parsed SVG and every text it draws (matplotlib's comments beside the glyphs)."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.fromstring(path.read_bytes(), parser=parser)
    # comments are not unescaped by the parser: "&lt;" stays as written
    texts = [html.unescape(node.text.strip()) for node in root.iter()
             if node.tag is ET.Comment and node.text]
    return root, texts


def axes_groups(root: ET.Element) -> list[ET.Element]:
    return [node for node in root.iter("{http://www.w3.org/2000/svg}g")
            if node.get("id", "").startswith("axes_")]


def has_text(texts: list[str], fragment: str) -> bool:
    return any(fragment in text for text in texts)


def assert_png(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert b"Matplotlib version" not in data  # no version stamp: deterministic bytes
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] > 300 and image.shape[1] > 300
    assert image.std() > 0.01  # something was drawn on the white background
    return image


# --- spectrum -------------------------------------------------------------------------------


@pytest.mark.slow
def test_spectrum_svg_all_eigenvalues(tmp_path, gru_values):
    target = tmp_path / "spectrum.svg"
    save_plot(gru_values, str(target))
    root, texts = svg_texts(target)
    # 2 recurrences (forward, reverse) x 3 gate blocks (r, z, n) x (eigenvalues, singular values)
    assert len(axes_groups(root)) == 12
    for fragment in ("Re λ", "Im λ", "σ_i (log scale)", "index i (largest first)",
                     "all 20 λ", "encoder L0 rev", "gru_bidirectional.safetensors",
                     "unit circle |λ| = 1", "leading eigenvalue, |λ| = ρ",
                     "singular values σ_i, sorted", "Pascanu et al. 2013"):
        assert has_text(texts, fragment), fragment
    assert not has_text(texts, "outside the unit circle")  # every |λ| < 1 in this file


def test_spectrum_png_from_report_only(tmp_path, elman_spectrum):
    target = tmp_path / "spectrum.png"
    save_plot(elman_spectrum, str(target))
    assert_png(target)
    svg = tmp_path / "spectrum.svg"
    save_plot(elman_spectrum, str(svg))
    root, texts = svg_texts(svg)
    assert len(axes_groups(root)) == 2
    # the report keeps the top 5 eigenvalues and σ_max, σ_min only
    assert has_text(texts, "top 5 of 32 λ")
    assert has_text(texts, "σ_max and σ_min")
    assert has_text(texts, "outside the unit circle, |λ| > 1")  # ρ = 1.1
    assert has_text(texts, "explosion-possible")


def test_report_values_are_those_of_the_file_blocks(gru_path, gru_values):
    """What the picture draws comes from the report, and equals numpy on the file's blocks."""
    bundle = load(gru_path)
    keys = {"encoder L0": "encoder.weight_hh_l0", "encoder L0 rev": "encoder.weight_hh_l0_reverse"}
    assert [item.recurrence.label for item in gru_values.recurrences] == list(keys)
    for item, key in zip(gru_values.recurrences, keys.values()):
        weight = bundle.array(key).astype(np.float64)  # rows r, z, n of 20 each (PyTorch order)
        for index, block in enumerate("rzn"):
            matrix = weight[20 * index:20 * (index + 1)]
            spec = item.block(block)
            ours = np.array([complex(re, im) for re, im in spec.all_eigenvalues])
            theirs = np.linalg.eigvals(matrix)
            np.testing.assert_allclose(np.sort_complex(ours), np.sort_complex(theirs),
                                       rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(spec.singular_values,
                                       np.linalg.svd(matrix, compute_uv=False),
                                       rtol=1e-12, atol=1e-14)


def test_values_are_kept_only_when_asked(gru_spectrum):
    spec = gru_spectrum.recurrences[0].block("r")
    assert spec.all_eigenvalues is None and spec.singular_values is None
    assert "all_eigenvalues" in gru_spectrum.to_dict()["recurrences"][0]["blocks"]["r"]


def test_pascanu_bound_only_for_elman(elman_bptt, elman_spectrum, lstm_bptt):
    (elman,) = elman_bptt.recurrences
    assert elman.bound == pytest.approx(elman_spectrum.recurrences[0].bound, rel=1e-12)
    assert elman.bound == pytest.approx(1.1234, abs=5e-4)  # sample_models/README.md
    assert all(item.bound is None for item in lstm_bptt.recurrences)


# --- bptt -----------------------------------------------------------------------------------


def test_bptt_svg_with_bound(tmp_path, elman_bptt, elman_spectrum):
    target = tmp_path / "bptt.svg"
    save_plot(elman_bptt, str(target))
    root, texts = svg_texts(target)
    assert len(axes_groups(root)) == 2  # one recurrence + the clip histogram
    for fragment in ("lag ℓ (steps)", "log10 ‖∂s_T/∂s_(T−ℓ)‖", "rnn L0 (rnn relu, s = h",
                     "min–max of ‖∂s_T/∂s_(T−ℓ)‖ over the probes",
                     "gradient by lag ‖∂E/∂s_(T−ℓ)‖", "bound (γσ_max)^ℓ, Pascanu et al. 2013",
                     "vanishing: norm at the largest lag < 0.0001",
                     "exploding: norm at any lag > 10000", "probes",
                     f"clip threshold max_norm = {elman_bptt.clip.max_norm:.4g}: Pascanu avg",
                     "probe: 4 × 30 steps, gaussian, seed 0"):
        assert has_text(texts, fragment), fragment


def test_bptt_png_two_layers_autoclip(tmp_path, lstm_bptt):
    png = tmp_path / "bptt.png"
    save_plot(lstm_bptt, str(png))
    assert_png(png)
    svg = tmp_path / "bptt.svg"
    save_plot(lstm_bptt, str(svg))
    root, texts = svg_texts(svg)
    assert len(axes_groups(root)) == 3
    assert has_text(texts, "encoder L1 (lstm, s = [h; c], 48 units)")
    assert has_text(texts, "AutoClip p10")
    assert not has_text(texts, "bound (γσ_max)^ℓ")  # no bounds given


def test_bptt_without_clip(tmp_path, elman_bptt):
    target = tmp_path / "bptt.svg"
    save_plot(dataclasses.replace(elman_bptt, clip=None), str(target))
    root, texts = svg_texts(target)
    assert len(axes_groups(root)) == 1
    assert not has_text(texts, "clip threshold")


@pytest.mark.parametrize("norms,expected", [
    ([np.inf, np.inf, np.inf], "every probe overflowed float64"),
    ([1.0, np.inf, 2.0, 3.0], "1 overflowed or zero, not shown"),
])
def test_bptt_non_finite_clip_norms(tmp_path, elman_bptt, norms, expected):
    report = dataclasses.replace(elman_bptt, clip=recommend(np.array(norms)))
    target = tmp_path / "bptt.svg"
    save_plot(report, str(target))
    _, texts = svg_texts(target)
    assert has_text(texts, expected)


def test_bptt_overflowed_forward_pass(tmp_path, capsys, elman_bptt):
    """A profile without rows (the forward pass overflowed) still draws, and says why."""
    profile = dataclasses.replace(elman_bptt.recurrences[0], rows=(), verdict="exploding",
                                  reason="the forward pass itself overflowed float at step 7")
    report = dataclasses.replace(elman_bptt, recurrences=(profile,))
    target = tmp_path / "bptt.svg"
    save_plot(report, str(target))
    _, texts = svg_texts(target)
    assert has_text(texts, "no lags measured:") and has_text(texts, "overflowed float at step 7")
    if _has_plotext():
        save_plot(report, "term")
        assert "no lags measured" in capsys.readouterr().out


# --- check ----------------------------------------------------------------------------------


def test_check_summary(tmp_path):
    target = tmp_path / "check.svg"
    save_plot(CHECK, str(target))
    root, texts = svg_texts(target)
    assert len(axes_groups(root)) == 2  # one panel per threshold
    for fragment in ("rnngrad check: 2 of 4 passed", "max norm: 2 of 3 failed",
                     "log10 rate: all 1 passed", "a.safetensors · rnn L0", "value, passed",
                     "value, failed", "limit", "no value (could not be computed)",
                     "log scale"):
        assert has_text(texts, fragment), fragment
    png = tmp_path / "check.png"
    save_plot(CHECK, str(png))
    assert_png(png)


def test_check_duck_type_without_plot_kind(tmp_path):
    @dataclasses.dataclass
    class Bare:
        results: list

    target = tmp_path / "check.svg"
    save_plot(Bare(results=list(CHECK.results[:1])), str(target))
    root, _ = svg_texts(target)
    assert len(axes_groups(root)) == 1
    save_plot(Bare(results=[]), str(tmp_path / "empty.svg"))  # nothing checked: still a file
    assert (tmp_path / "empty.svg").stat().st_size > 0


# --- files, determinism, state --------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_two_runs_give_identical_bytes(tmp_path, elman_bptt, suffix):
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    save_plot(elman_bptt, str(first))
    save_plot(elman_bptt, str(second))
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.slow
def test_two_processes_give_identical_svg(tmp_path):
    """Across interpreters too: different hash seeds, fresh font caches in memory."""
    code = ("import sys, dataclasses, rnngrad.plots as p; "
            "R = dataclasses.make_dataclass('R', ['model', 'recurrence', 'threshold', 'value', "
            "'limit', 'passed']); C = dataclasses.make_dataclass('C', ['results']); "
            "p.save_plot(C([R('m', 'rnn L0', 'max-bound', 1.2, 1.0, False), "
            "R('m', 'rnn L1', 'max-bound', 0.5, 1.0, True)]), sys.argv[1])")
    outputs = []
    for seed in ("1", "2"):
        target = tmp_path / f"check{seed}.svg"
        subprocess.run([sys.executable, "-c", code, str(target)], check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]


def test_svg_has_no_date(tmp_path, elman_bptt):
    target = tmp_path / "bptt.svg"
    save_plot(elman_bptt, target)  # a Path works as well as a str
    text = target.read_text(encoding="utf-8")
    assert "<dc:date>" not in text and "Matplotlib v" not in text


@pytest.mark.slow
def test_global_matplotlib_state_untouched(tmp_path, elman_bptt, gru_spectrum):
    before = dict(matplotlib.rcParams)
    save_plot(elman_bptt, str(tmp_path / "a.png"))
    save_plot(gru_spectrum, str(tmp_path / "b.svg"))
    after = dict(matplotlib.rcParams)
    assert {k: v for k, v in after.items() if before.get(k) != v} == {}
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []


def test_importing_plots_imports_no_plotting_library():
    code = ("import sys, rnngrad.plots; "
            "assert 'matplotlib' not in sys.modules and 'plotext' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.pdf", "out.jpg", "out", "out.svg.txt"])
def test_unknown_extension_is_an_option_error(tmp_path, elman_spectrum, name):
    target = tmp_path / name
    with pytest.raises(OptionError) as info:
        save_plot(elman_spectrum, str(target))
    assert ".png or .svg" in info.value.hint and "--plot term" in info.value.hint
    assert not target.exists()


def test_check_target_before_the_analysis(tmp_path):
    assert check_target(tmp_path / "OUT.SVG") == "svg"
    assert check_target(str(tmp_path / "a.png")) == "png"
    with pytest.raises(OptionError):
        check_target("terminal")


def test_missing_matplotlib(monkeypatch, tmp_path, elman_spectrum):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(OptionError) as info:
        save_plot(elman_spectrum, str(tmp_path / "out.png"))
    assert info.value.message == "--plot needs matplotlib"
    assert info.value.hint == 'pip install "rnngrad[plot]"'
    assert not (tmp_path / "out.png").exists()


def test_missing_plotext(monkeypatch, elman_spectrum):
    monkeypatch.setitem(sys.modules, "plotext", None)
    with pytest.raises(OptionError) as info:
        save_plot(elman_spectrum, "term")
    assert info.value.message == "--plot term needs plotext"
    assert info.value.hint == 'pip install "rnngrad[plot]"'


def test_unwritable_target(tmp_path, elman_spectrum):
    with pytest.raises(OptionError, match="cannot be written"):
        save_plot(elman_spectrum, str(tmp_path / "no" / "such" / "folder" / "out.svg"))


def test_inspect_report_is_refused(tmp_path):
    report = rnngrad.inspect(SAMPLES / "elman_exploding.safetensors")
    with pytest.raises(OptionError, match="cannot draw a inspect report"):
        save_plot(report, str(tmp_path / "x.svg"))


# --- terminal -------------------------------------------------------------------------------


def _has_plotext() -> bool:
    try:
        import plotext
    except ImportError:
        return False
    return hasattr(getattr(plotext, "figure", None), "signal")


needs_plotext = pytest.mark.skipif(not _has_plotext(), reason="plotext >= 6 is not installed")


@needs_plotext
def test_term_bptt(capsys, elman_bptt, elman_spectrum):
    save_plot(elman_bptt, "term")
    out = capsys.readouterr().out
    assert "rnngrad bptt · elman_exploding.safetensors" in out
    assert f"rnn L0: {elman_bptt.recurrences[0].verdict}" in out and "lag ℓ (steps)" in out
    assert "bound (γσ_max)^ℓ" in out and "clip threshold" in out
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal
    assert len(out.splitlines()) > 30


@needs_plotext
def test_term_spectrum_and_check(capsys, gru_values):
    save_plot(gru_values, "term")
    out = capsys.readouterr().out
    assert "encoder L0 rev: undetermined; eigenvalues λ" in out and "Re λ" in out
    assert "log10 σ_i" in out
    save_plot(CHECK, "term")
    out = capsys.readouterr().out
    assert "max norm: 2 of 3 failed" in out and "passed" in out


@needs_plotext
def test_term_leaves_plotext_clean(capsys, elman_bptt):
    import plotext

    save_plot(elman_bptt, "term")
    first = capsys.readouterr().out
    save_plot(elman_bptt, "term")
    assert capsys.readouterr().out == first  # nothing carried over from the last picture
    figure = plotext.figure  # a user's own plot afterwards shows nothing of ours
    try:
        figure.plot_size(40, 10)
        figure.draw(figure.signal([1.0, 2.0], [1.0, 2.0]))
        text = figure.build().string(colorless=True)
    finally:
        figure.clear()
    assert "rnn L0" not in text and "lag" not in text
