"""Promotion: copies a blessed model folder to the path the nightly scorer reads.

    model.promotion.promote("out/retrain/model", "gs://BUCKET/digits/model")

Only a candidate blessed by `digits evaluate` for its current model file is promoted
(NotBlessed otherwise, and nothing is touched). The copy is safe for a scorer starting
meanwhile: the promoted folder's blessing.json is removed first (a scorer then refuses the
folder), every other file is copied, and the candidate's blessing.json comes last. A
destination holding anything but a model folder's files (common.ownership.MODEL) is
refused.
"""

from __future__ import annotations

from common import files, ownership, schema
from model import folder


class NotBlessed(Exception):
    """The candidate has no blessing for its current model file."""


def promote(candidate: str, to: str) -> dict:
    """Returns the candidate's blessing."""
    try:
        blessing = folder.check_blessing(candidate)
    except folder.ModelRefused as refused:
        raise NotBlessed(str(refused)) from None
    fix = "Promote to a new or empty --to folder, or to one digits promote wrote."
    ownership.claim(to, ownership.MODEL, "digits promote", "--to", fix)
    names = [n for n in files.list_tree(candidate) if n != schema.BLESSING_FILE]
    names = [n for n in names if not n.startswith(("backup/", "logs/"))]
    names = [n for n in names if ownership.is_own(n, ownership.MODEL)]
    files.delete(files.join(to, schema.BLESSING_FILE), missing_ok=True)
    own = {n for n in files.list_tree(to) if ownership.is_own(n, ownership.MODEL)}
    stale = own - set(names)
    files.delete_all([files.join(to, n) for n in sorted(stale)])
    for name in names:
        files.copy(files.join(candidate, name), files.join(to, name))
    files.copy(files.join(candidate, schema.BLESSING_FILE), files.join(to, schema.BLESSING_FILE))
    return blessing
