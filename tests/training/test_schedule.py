"""The learning rate's linear tail (--lr-decay)."""

import itertools

import numpy as np
import pytest

from facegan.training.schedule import LinearTail, learning_rate


def rate_at(schedule, step):
    return float(np.asarray(schedule(step)))


def test_the_rate_is_constant_then_falls_linearly_to_zero_at_the_last_step():
    s = LinearTail(3e-4, total_steps=1000, tail=0.25)  # the tail: steps 750..1000
    assert rate_at(s, 0) == pytest.approx(3e-4)
    assert rate_at(s, 750) == pytest.approx(3e-4)
    assert rate_at(s, 875) == pytest.approx(1.5e-4)
    assert rate_at(s, 999) == pytest.approx(3e-4 / 250)
    assert rate_at(s, 1000) == 0.0
    assert rate_at(s, 5000) == 0.0  # past the end (a resume with the same epochs) it stays 0
    rates = [rate_at(s, k) for k in range(740, 1001, 10)]
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_a_whole_run_tail_starts_falling_at_once():
    s = LinearTail(1.0, total_steps=10, tail=1.0)
    assert [round(rate_at(s, k), 6) for k in range(11)] == [round(1 - k / 10, 6) for k in range(11)]


def test_no_tail_is_the_plain_number():
    assert learning_rate(3e-4, 1000, 0.0) == 3e-4
    assert isinstance(learning_rate(3e-4, 1000, 0.5), LinearTail)


def test_the_schedule_round_trips_through_its_config():
    s = LinearTail(2e-4, 640, 0.3)
    again = LinearTail.from_config(s.get_config())
    assert [rate_at(again, k) for k in (0, 500, 640)] == [rate_at(s, k) for k in (0, 500, 640)]


def test_training_gives_both_optimizers_the_tail_over_the_runs_steps():
    """build_gan wires --lr-decay into both Adams: full rate at the start, 0 at the last step."""
    import keras
    from conftest import tiny_config

    from facegan.training.backend import Backend
    from facegan.training.run import build_gan

    cfg = tiny_config().override(train={"epochs": 4, "lr_decay": 0.5, "g_lr": 2e-4, "d_lr": 4e-4})
    gan = build_gan(cfg, Backend.current(), steps_per_epoch=10)  # 40 steps; the tail: 20..40
    for optimizer, rate in ((gan.g_optimizer, 2e-4), (gan.d_optimizer, 4e-4)):
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(rate)
        optimizer.iterations.assign(30)
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(rate / 2)
        optimizer.iterations.assign(40)
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 0.0
