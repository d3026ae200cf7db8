"""The jobs users run: `digits preprocess | train | evaluate | score` (see jobs.cli)."""
