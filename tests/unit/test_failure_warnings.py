"""The warnings a run prints and records (fastgan.run.reporter.failure_warnings): the ganhacks
failure signals and the causes of skipped steps, as pure functions of one log interval's values.
cli/test_report.py checks that a real run writes them to warnings.jsonl."""

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


def test_skip_warnings_name_the_cause() -> None:
    cfg, fp16 = load_config(None), load_config(None, ["train.precision=fp16"])
    diverging = failure_warnings({"skipped_G_total": 3.0, "nonfinite_loss_G_total": 3.0}, fp16)
    assert any("3 G step(s) skipped" in w and "loss itself was inf/NaN" in w for w in diverging)
    assert any("fp16 overflow" in w for w in failure_warnings({"skipped_D_total": 1.0}, fp16))
    assert any("non-finite gradients" in w and "fp16" not in w for w in failure_warnings({"skipped_D_total": 1.0}, cfg))
