"""The ganhacks failure signals, as pure functions of one log interval's values."""

from __future__ import annotations

from fastgan.config import load_config
from fastgan.run.reporter import failure_warnings

CFG = load_config(None)
HEALTHY = {"loss_D": 1.1, "loss_G": 0.9, "gnorm_D": 40.0, "gnorm_D_max": 150.0, "gnorm_G": 3.0, "gnorm_G_max": 9.0}


def test_a_healthy_interval_warns_nothing() -> None:
    assert failure_warnings(HEALTHY, CFG) == []  # a routine single-step spike is not a signal


def test_each_signal() -> None:
    assert any("near 0" in w for w in failure_warnings({**HEALTHY, "loss_D": 1e-4}, CFG))
    assert any("D gradient norm averaged 250" in w for w in failure_warnings({**HEALTHY, "gnorm_D": 250.0}, CFG))
    assert any("diverged" in w for w in failure_warnings({**HEALTHY, "loss_G": float("nan")}, CFG))
    assert any("2 G step(s) skipped" in w for w in failure_warnings({**HEALTHY, "skipped_G_total": 2.0}, CFG))


def test_d_loss_near_zero_is_not_a_signal_for_wasserstein_losses() -> None:
    cfg = load_config(None, ["loss.name=wgan-gp"])
    assert failure_warnings({**HEALTHY, "loss_D": -5.0}, cfg) == []
