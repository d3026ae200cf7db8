"""Every argument a user typed is accounted for: the job's own options, then Beam's.

    args, beam_args = options.parse_job_and_beam(parser, argv)

The job's parser takes its options (no abbreviations: `--form` is not `--format`); what is
left must be Beam pipeline options (every PipelineOptions class Beam knows, as Beam's own
parser reads them). Anything else stops the job before any work, with exit status 2 and
the name of what was not understood and, as argparse does, the likely option; file names
after `--input` (what a shell makes of an unquoted glob) are named as such, with the
quoted form to type instead.
"""

from __future__ import annotations

import argparse
import difflib
import os

from apache_beam.options import pipeline_options


def _beam_parser() -> argparse.ArgumentParser:
    parser = pipeline_options._BeamArgumentParser(allow_abbrev=False, add_help=False)
    seen = set()
    for cls in pipeline_options.PipelineOptions.__subclasses__():
        if str(cls) not in seen:
            seen.add(str(cls))
            cls._add_argparse_args(parser)
    return parser


def _option_strings(*parsers) -> list[str]:
    return [
        option
        for parser in parsers
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    ]


def parse_job_and_beam(parser: argparse.ArgumentParser, argv) -> tuple[argparse.Namespace, list]:
    """(the job's options, Beam's arguments); parser.error (exit 2) for anything else."""
    parser.allow_abbrev = False
    args, rest = parser.parse_known_args(argv)
    beam = _beam_parser()
    _, unknown = beam.parse_known_args(rest)
    if unknown:
        parser.error(explain(unknown, argv or [], _option_strings(parser, beam)))
    return args, rest


def explain(unknown: list[str], argv: list[str], known: list[str]) -> str:
    """A sentence naming what was not understood, with the likely option or the fix."""
    loose = [arg for arg in unknown if not arg.startswith("-")]
    if loose and _after_input(loose[0], argv):
        pattern = quoted_glob(loose)
        return (
            f"{len(loose)} file name(s) after --input ({', '.join(loose[:3])}"
            f"{', ...' if len(loose) > 3 else ''}): the shell expanded an unquoted glob, so "
            f"only the first file would be scored. Quote the pattern: --input '{pattern}'"
        )
    parts = []
    for i, arg in enumerate(unknown):
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            close = difflib.get_close_matches(name, known, n=1)
            parts.append(f"{arg}" + (f" (did you mean {close[0]}?)" if close else ""))
        elif not (i and unknown[i - 1].startswith("--") and "=" not in unknown[i - 1]):
            parts.append(arg)  # not the value of the unknown option just named
    return (
        "unrecognized arguments: "
        + ", ".join(parts)
        + ("; neither this job's options (--help) nor Beam pipeline options")
    )


def _after_input(first_loose: str, argv: list[str]) -> bool:
    """Whether `first_loose` follows an --input value in argv (`--input a.png b.png`)."""
    for i, arg in enumerate(argv[:-1]):
        if arg == first_loose and i >= 2 and argv[i - 2] == "--input":
            return True
        if arg == first_loose and i >= 1 and argv[i - 1].startswith("--input="):
            return True
    return False


def quoted_glob(paths: list[str]) -> str:
    """A glob that names files like these: their common folder, `*`, their common suffix."""
    folders = sorted({os.path.dirname(p) for p in paths})
    star = "*" if len(folders) == 1 else "**/*"
    folder = folders[0] if len(folders) == 1 else os.path.commonpath(folders)
    suffixes = {os.path.splitext(p)[1] for p in paths}
    suffix = suffixes.pop() if len(suffixes) == 1 else ""
    return os.path.join(folder, star + suffix)
