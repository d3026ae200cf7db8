"""The docs are a front door and guides that hold together: README.md short, every
relative link in it and in docs/ resolving to a file of the checkout."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    text = "\n".join(lines)
    for guide in ("data", "training", "calibration", "evaluation", "scoring", "cloud", "scheduling",
                  "operations", "benchmarks", "development"):  # fmt: skip
        assert f"(docs/{guide}.md)" in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    targets = [t for t in LINK.findall(page.read_text()) if "://" not in t]
    targets = [t.split("#")[0] for t in targets if not t.startswith(("#", "mailto:"))]
    missing = [t for t in targets if t and not (page.parent / t).exists()]
    assert missing == []


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_to_a_section_finds_its_heading(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        path, _, anchor = target.partition("#")
        if "://" in target or not anchor:
            continue
        linked = (page.parent / path) if path else page
        headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)
        if anchor not in {_slug(h) for h in headings}:
            broken.append(target)
    assert broken == []
