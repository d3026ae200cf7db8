"""The review loop's first step: a page where people answer the night's review queue
(`digits review`), their answers written as labelled data.

- `queue`:   the partition's review and not_a_digit inputs, most useful first, and the
             night's figures.
- `answers`: answers.jsonl and the image folder, locked, appended, atomic.
- `server`:  the HTTP server (standard library) and the page it serves (static/).
"""
