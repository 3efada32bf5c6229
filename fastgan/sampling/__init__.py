"""Images from a generator: grids and arrays (`grid`), latent walks and truncation (`walks`),
the animated timeline of a run's grids (`timeline`), and the generator as an ONNX graph that
samples without fastgan (`onnx_export`)."""
