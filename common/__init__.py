"""What every package shares, and nothing else.

- `schema`: the record schema (features, shapes, serialisation) and the names of the files
            the jobs write (dataset, model folder, scoring partition).
- `files`:  reading and writing those files, local paths and gs:// alike, through Beam's
            FileSystems: paths, JSON, digests, UTC timestamps, local staging.
- `tfrecord`: the TFRecord file format, written and read without TensorFlow.
- `counts`: merging nested counts, the combiner behind every job summary.
- `progress`: the periodic progress line of long Beam jobs.
- `startup`: a quiet start: TensorFlow's native start-up lines filtered from stderr.

`pipeline/`, `model/` and `jobs/` import from here; nothing here imports them.
"""
