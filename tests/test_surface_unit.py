"""Pascanu et al.'s single unit x_t = w σ(x_(t−1)) + b against closed forms and hand-carried
forward-mode derivatives; the saddle-node bifurcations of x = wσ(x) + b and the wall of E_50
where x_50 changes attractor (seed Sec. "Exploding and vanishing gradients", Fig. 4)."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import rnngrad
from conftest import SAMPLES
from surface_oracle import (fixed_points, saddle_nodes, sigmoid, unit_derivatives, unit_loss)

SAMPLE = SAMPLES / "pascanu_unit.safetensors"
W, B, X0, T, TARGET = 5.0, -2.6, 0.5, 50, 0.7


def linear_unit(path, w: float, x0: float, steps: int, loss: str, targets: str = "0"):
    """x_t = w x_(t−1) (σ = identity, b = 0) from x_0, as a safetensors file with its map."""
    text = (f'[[recurrence]]\nname = "unit"\nrecurrent = "w"\nnonlinearity = "identity"\n'
            f'[probe]\nbatch = 1\nsteps = {steps}\nburn_in = 0\ninitial_state = {x0}\n'
            f'loss = "{loss}"\n' + (f"targets = {targets}\n" if loss == "squared" else ""))
    save_file({"w": torch.tensor([[w]], dtype=torch.float64)}, str(path),
              metadata={"rnngrad.map": text})
    return path


def test_linear_unit_readout_is_the_seeds_closed_form(tmp_path):
    """E = u x_T with u = ±1: ∂x_T/∂w = T x_0 w^(T−1), ∂²x_T/∂w² = T(T−1) x_0 w^(T−2)."""
    w, x0, steps = 1.1, 0.5, 40
    report = rnngrad.surface(linear_unit(tmp_path / "l.safetensors", w, x0, steps, "readout"),
                             lengths="10,20,40")
    first = steps * x0 * w ** (steps - 1)
    second = steps * (steps - 1) * x0 * w ** (steps - 2)
    assert report.parameter_count == 1
    assert abs(report.loss) == pytest.approx(x0 * w ** steps, rel=1e-12)
    assert report.gradient_norm == pytest.approx(first, rel=1e-12)
    assert abs(report.curvature.top_eigenvalue) == pytest.approx(second, rel=1e-10)
    assert np.sign(report.curvature.top_eigenvalue) == np.sign(report.loss)  # both carry u
    # truncated to the last h steps (x_(T−h) held): ∂x_T/∂w = h x_0 w^(T−1)
    for row in report.by_length:
        h = row.steps
        assert row.gradient_norm == pytest.approx(h * x0 * w ** (steps - 1), rel=1e-12)
        assert abs(row.top_eigenvalue) == pytest.approx(h * (h - 1) * x0 * w ** (steps - 2),
                                                        rel=1e-10)


def test_linear_unit_squared_loss_combines_both_derivatives(tmp_path):
    """E = x_T²: E' = 2 x_T x_T', E'' = 2 x_T'² + 2 x_T x_T''."""
    w, x0, steps = 1.05, 0.5, 30
    report = rnngrad.surface(linear_unit(tmp_path / "l.safetensors", w, x0, steps, "squared"),
                             lengths="5,30")
    x = x0 * w ** steps
    first = steps * x0 * w ** (steps - 1)
    second = steps * (steps - 1) * x0 * w ** (steps - 2)
    assert report.loss == pytest.approx(x * x, rel=1e-12)
    assert report.gradient_norm == pytest.approx(2 * x * first, rel=1e-12)
    assert report.curvature.top_eigenvalue == pytest.approx(2 * first ** 2 + 2 * x * second,
                                                            rel=1e-10)
    assert report.curvature.along_gradient == pytest.approx(report.curvature.top_eigenvalue,
                                                            rel=1e-12)
    assert report.step.stable_lr == pytest.approx(2 / report.curvature.top_eigenvalue, rel=1e-10)


@pytest.mark.parametrize("w,b", [(W, B), (3.0, -1.2), (6.0, -3.5)])
def test_sigmoid_unit_matches_hand_forward_mode(w, b, tmp_path):
    path = tmp_path / "u.safetensors"
    text = SAMPLE_MAP()
    save_file({"w": torch.tensor([[w]], dtype=torch.float64),
               "b": torch.tensor([b], dtype=torch.float64)}, str(path),
              metadata={"rnngrad.map": text})
    energy, grad, hess, _ = unit_derivatives(w, b, X0, T, TARGET)
    objective = rnngrad.surface.loss_function(path)
    got = torch.func.grad(objective)(objective.theta)
    assert float(objective(objective.theta)) == pytest.approx(energy, rel=1e-12)
    assert got.tolist() == pytest.approx(grad.tolist(), rel=1e-9, abs=1e-15)
    report = rnngrad.surface(path, lengths="50", points=9, sgd_steps=1)
    values, vectors = np.linalg.eigh(hess)
    top = int(np.argmax(np.abs(values)))
    unit = grad / np.linalg.norm(grad)
    c = report.curvature
    scale = max(abs(values))
    assert c.largest_eigenvalue == pytest.approx(values[1], rel=1e-8, abs=1e-8 * scale)
    assert c.smallest_eigenvalue == pytest.approx(values[0], rel=1e-8, abs=1e-8 * scale)
    assert c.top_eigenvalue == pytest.approx(values[top], rel=1e-8)
    assert c.along_gradient == pytest.approx(unit @ hess @ unit, rel=1e-8, abs=1e-8 * scale)
    assert c.cos_gradient_top == pytest.approx(abs(unit @ vectors[:, top]), rel=1e-8)


def SAMPLE_MAP() -> str:
    from rnngrad.io import load

    return load(SAMPLE).metadata["rnngrad.map"]


def test_the_sample_needs_no_option_and_is_the_papers_model():
    report = rnngrad.surface(SAMPLE)
    energy, grad, _, x50 = unit_derivatives(W, B, X0, T, TARGET)
    assert report.probe.shape == (1, 50, 0) and report.probe.initial_state == "0.5"
    assert report.loss == pytest.approx((sigmoid(x50) - 0.7) ** 2, rel=1e-12)
    assert report.gradient_norm == pytest.approx(float(np.linalg.norm(grad)), rel=1e-9)
    assert report.options.loss == "squared" and report.options.targets == "0.7"
    assert {row.name for row in report.parameters} == {"unit.weight_hh", "unit.bias_ih"}


def test_saddle_nodes_bound_the_bistable_range():
    """For w = 5 the unit has three fixed points exactly between the two saddle-node b."""
    low, high = saddle_nodes(W)
    assert low == pytest.approx(-2.6556, abs=1e-4) and high == pytest.approx(-2.3444, abs=1e-4)
    for b, count in ((low - 0.01, 1), (low + 0.01, 3), (B, 3), (high - 0.01, 3),
                     (high + 0.01, 1)):
        assert len(fixed_points(W, b)) == count, b
    # below b_− only the lower attractor is left, above b_+ only the upper one
    assert sigmoid(fixed_points(W, low - 0.01)[0]) < 0.5 < sigmoid(fixed_points(W, high + 0.01)[0])
    # at b_+ the lower attractor and the middle point merge where wσ'(x) = 1
    merged = min(fixed_points(W, high - 1e-7))
    assert W * sigmoid(merged) * (1 - sigmoid(merged)) == pytest.approx(1.0, abs=1e-3)


def test_e50_jumps_where_x50_changes_attractor():
    """Along b at w = 5, E_50 jumps once, where x_0 = 0.5 is the unstable middle fixed point
    (b* = x_0 − wσ(x_0)): below it the orbit falls to the lower attractor, above it rises."""
    report = rnngrad.surface(SAMPLE, vary=("b=-2.8:-2.2:121",), lengths="50", sgd_steps=1)
    (axis,) = report.grid.axes
    values = np.array(axis.values)
    losses = np.array(report.grid.loss[0])
    jump = int(np.argmax(np.abs(np.diff(losses))))
    b_star = X0 - W * sigmoid(X0)
    low, high = saddle_nodes(W)
    assert values[jump] <= b_star <= values[jump + 1]
    assert low < b_star < high
    # far from b*, E_50 is (σ(x*) − 0.7)² at the attractor the orbit went to
    for index in (0, len(values) - 1):
        points = fixed_points(W, values[index])
        attractor = min(points) if values[index] < b_star else max(points)
        assert losses[index] == pytest.approx((sigmoid(attractor) - TARGET) ** 2, rel=1e-6)
    # and every grid value is the loss the test computes itself
    assert losses.tolist() == pytest.approx([unit_loss(W, b, X0, T, TARGET) for b in values],
                                            rel=1e-10)


def test_the_wall_on_the_slice_is_where_the_loss_jumps():
    report = rnngrad.surface(SAMPLE, lengths="50")
    _, grad, _, _ = unit_derivatives(W, B, X0, T, TARGET)
    unit = grad / np.linalg.norm(grad)

    def along(t: float) -> float:
        return unit_loss(W - t * unit[0], B - t * unit[1], X0, T, TARGET)

    wall = report.wall
    assert wall is not None and wall.kind == "jump"
    low, high = 0.0, 0.05  # the jump, bracketed and bisected here with the test's own E
    middle = 0.5 * (wall.loss_before + wall.loss_after)
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if along(mid) < middle else (low, mid)
    assert wall.distance == pytest.approx(low, rel=1e-9)
    # the wall sits on the line where x_0 is the middle fixed point, b = x_0 − wσ(x_0)
    crossing = (W * sigmoid(X0) + B - X0) / (unit[0] * sigmoid(X0) + unit[1])
    assert wall.distance == pytest.approx(crossing, rel=0.02)
    step = report.step
    assert step.wall_distance == wall.distance
    assert step.crosses_wall is False and step.step_length == pytest.approx(
        0.01 * np.linalg.norm(grad), rel=1e-9)
    assert "stays short of the wall" in step.sentence


def test_a_larger_step_crosses_and_clipping_keeps_it_in():
    report = rnngrad.surface(SAMPLE, lr=0.2, max_norm=0.05, lengths="50")
    step = report.step
    assert step.crosses_wall is True and step.clipped_crosses_wall is False
    assert step.loss_unclipped > 0.3 > step.loss_clipped
    assert step.max_norm_to_stay == pytest.approx(step.wall_distance / 0.2, rel=1e-12)
    assert "crosses the wall" in step.sentence and "clipping keeps it in" in step.sentence
    plain = report.paths.unclipped
    assert plain[1].loss == pytest.approx(step.loss_unclipped, rel=1e-12)
    assert "went past a wall" in report.paths.sentence


def test_growth_rates_fit_the_rows():
    report = rnngrad.surface(SAMPLE, lengths="10,20,30,40,50")
    steps = np.array([row.steps for row in report.by_length])
    logs = np.log10([row.gradient_norm for row in report.by_length])
    assert report.growth.gradient_rate == pytest.approx(10 ** np.polyfit(steps, logs, 1)[0],
                                                        rel=1e-12)
    assert report.growth.regime == "steady"
