"""Functions and classes in process: models, losses, config, data, metrics, augment, the step, ..."""
