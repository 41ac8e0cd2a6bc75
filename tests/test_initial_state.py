"""``--initial-state VALUE|FILE.npy``: bptt from a given s_0 against PyTorch's own modules run
from h0 (and (h0, c0)), through ``torch.func.jacrev`` and autograd."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.func import jacrev

from oracle import spectral_norm
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.cli import main
from rnngrad.errors import ProbeError
from rnngrad.probes import ProbeSpec
from test_bptt_oracle import make_module, state_dict_of

RTOL = 1e-6
LAGS = (1, 3, 8)


def torch_state(module, s0: torch.Tensor):
    """rnngrad's s_0 rows (R, S) as PyTorch's h0 (or (h0, c0)), batch of one."""
    if isinstance(module, torch.nn.LSTM):
        out = module.proj_size or module.hidden_size
        return (s0[:, :out].unsqueeze(1).contiguous(), s0[:, out:].unsqueeze(1).contiguous())
    return s0.unsqueeze(1).contiguous()


def flat(module, state) -> torch.Tensor:
    return torch.cat([state[0].flatten(), state[1].flatten()]) if isinstance(
        module, torch.nn.LSTM) else state.flatten()


def unflat(module, vector: torch.Tensor):
    if isinstance(module, torch.nn.LSTM):
        out = module.proj_size or module.hidden_size
        return vector[:out].view(1, 1, -1), vector[out:].view(1, 1, -1)
    return vector.view(1, 1, -1)


def lag_jacobian_from(module, x: torch.Tensor, s0: torch.Tensor, lag: int) -> torch.Tensor:
    """∂s_T/∂s_(T−lag) of a one-layer module started from s_0 (rnngrad's layout)."""
    steps = x.shape[1]
    with torch.no_grad():
        state = torch_state(module, s0)
        if steps - lag > 0:
            state = module(x[:, :steps - lag], state)[1]
    start = flat(module, state)
    return jacrev(lambda s: flat(module, module(x[:, steps - lag:], unflat(module, s))[1]))(start)


@pytest.mark.parametrize("name", ["rnn-tanh", "gru", "lstm"])
def test_bptt_from_a_given_state_matches_jacrev_with_h0(name, tmp_path):
    module = make_module(name)
    x = np.random.default_rng(7).standard_normal((2, 10, 4))
    size = module.hidden_size * (2 if isinstance(module, torch.nn.LSTM) else 1)
    s0 = np.random.default_rng(8).standard_normal((1, size)) * 0.8
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "s0.npy", s0)
    report = bptt(state_dict_of(module), BpttOptions(
        lags=",".join(map(str, LAGS)),
        probe=ProbeSpec(inputs=str(tmp_path / "x.npy"), initial_state=str(tmp_path / "s0.npy"))))
    assert report.probe.initial_state == str(tmp_path / "s0.npy")
    zero = bptt(state_dict_of(module), BpttOptions(
        lags=",".join(map(str, LAGS)), probe=ProbeSpec(inputs=str(tmp_path / "x.npy"))))
    for row, zero_row in zip(report.recurrences[0].rows, zero.recurrences[0].rows):
        truth = [spectral_norm(lag_jacobian_from(module, torch.from_numpy(x[b:b + 1]),
                                                 torch.from_numpy(s0), row.lag))
                 for b in range(2)]
        assert row.norm == pytest.approx(10 ** float(np.mean(np.log10(truth))), rel=RTOL)
        assert row.norm != pytest.approx(zero_row.norm, rel=1e-3)  # s_0 makes a difference


def test_clip_norms_from_a_given_state_match_autograd(tmp_path):
    module = make_module("rnn-tanh")
    x = np.random.default_rng(9).standard_normal((3, 8, 4))
    np.save(tmp_path / "x.npy", x)
    report = bptt(state_dict_of(module), BpttOptions(
        lags="1,2", probe=ProbeSpec(inputs=str(tmp_path / "x.npy"), initial_state=0.4)))
    assert report.probe.initial_state == "0.4"
    norms = []
    for b in range(3):
        u = np.random.default_rng([0, 11, b]).standard_normal(7)
        u = torch.as_tensor(u / np.linalg.norm(u))
        module.zero_grad()
        h0 = torch.full((1, 1, 7), 0.4, dtype=torch.float64)
        out = module(torch.from_numpy(x[b:b + 1]), h0)[0][0, -1]
        (out @ u).backward()
        norms.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in module.parameters()))))
    assert report.clip.norms == pytest.approx(norms, rel=1e-10)


def test_a_value_is_the_same_as_a_file_of_it(tmp_path):
    module = make_module("gru-stacked-bidir")
    np.save(tmp_path / "s0.npy", np.full((4, 7), -0.25))
    common = dict(lags="1,5")
    by_value = bptt(state_dict_of(module), BpttOptions(
        probe=ProbeSpec(batch=2, steps=10, burn_in=0, initial_state=-0.25), **common))
    by_file = bptt(state_dict_of(module), BpttOptions(
        probe=ProbeSpec(batch=2, steps=10, burn_in=0,
                        initial_state=str(tmp_path / "s0.npy")), **common))
    for a, b in zip(by_value.recurrences, by_file.recurrences):
        assert [r.log10_norm for r in a.rows] == pytest.approx([r.log10_norm for r in b.rows],
                                                               rel=1e-12)


def test_default_stays_zero_and_numbers_unchanged(tmp_path):
    module = make_module("lstm")
    np.save(tmp_path / "zero.npy", np.zeros(14))
    options = dict(lags="1,4", probe=ProbeSpec(batch=2, steps=8))
    default = bptt(state_dict_of(module), BpttOptions(**options))
    zero = bptt(state_dict_of(module), BpttOptions(
        lags="1,4", probe=ProbeSpec(batch=2, steps=8, initial_state=str(tmp_path / "zero.npy"))))
    assert default.probe.initial_state is None
    norms = [[r.norm for r in report.recurrences[0].rows] for report in (default, zero)]
    assert norms[0] == norms[1]
    assert default.clip.norms == zero.clip.norms


@pytest.mark.parametrize("value", [float("nan"), "inf", "", "  "])
def test_bad_values_are_refused(value):
    with pytest.raises(ProbeError):
        ProbeSpec(initial_state=value)


def test_bad_file_shape_is_one_line_and_exit_2(tmp_path, capsys, samples):
    np.save(tmp_path / "s0.npy", np.zeros((3, 5)))
    with pytest.raises(SystemExit) as exc:
        main(["bptt", str(samples / "elman_vanishing.safetensors"), "--lags", "1",
              "--initial-state", str(tmp_path / "s0.npy"), "-f", "json"])
    assert exc.value.code == 2
    err = capsys.readouterr()
    assert err.err.count("\n") == 1 and "does not fit 1 recurrence(s) of state size 32" in err.err
    assert "error" in json.loads(err.out)
