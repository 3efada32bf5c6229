"""The real fastgan CLI on one process: in process through CliRunner, or as a subprocess."""
