"""Where images come from (`sources`) and how they reach the step (`backends`): every backend
honours one contract (`contract`): uint8 NCHW batches of fixed shape on the training device, endless."""
