"""Monitoring: is tonight like the model's reference and the last nights?

- `drift`:  the input and output histograms every night records, and their distances.
- `nights`: drift.json: tonight against the reference and the trailing nights, the alarm.
"""
