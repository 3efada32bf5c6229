"""A training run's lifecycle: planning it from the command line (`plan`), its folder and lock
(`folder`, `lock`), checkpoints and resume (`checkpoint`, `resume`, `resume_rules`), what runs
between steps (`tasks`: logs, samples, checkpoints, stop signals, in-training eval), the
divergence guard, peers, and the session that ties them together (`session`)."""
