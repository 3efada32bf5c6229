"""`fastgan train`: plan the run from the command line (fastgan.run.plan), check the config,
then print it (--dry-run) or train it (fastgan.run.session)."""

from __future__ import annotations

import sys

from fastgan.config import to_toml
from fastgan.run.plan import TrainArgs, plan_run
from fastgan.train.schedule import describe as describe_schedules
from fastgan.validate import validate


def run_train(a: TrainArgs) -> None:
    plan = plan_run(a)
    validate(plan.cfg)
    if a.dry_run:
        sys.stdout.write(to_toml(plan.cfg))
        for line in describe_schedules(plan.cfg):  # what [schedule] makes of it, on stderr (stdout stays TOML)
            print(line, file=sys.stderr)
        return
    from fastgan.run.session import run_train as train_as_planned  # torch and accelerate: only now

    train_as_planned(plan, a.auto_resume)
