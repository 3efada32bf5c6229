"""Images from a generator: grids and arrays (`grid`), latent walks and truncation (`walks`),
and the animated timeline of a run's grids (`timeline`)."""
