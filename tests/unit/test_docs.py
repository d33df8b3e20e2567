"""The docs hold together: every relative link lands on a file (and a heading, where it names
one), and the README reaches every page of docs/."""

import re
from pathlib import Path

import pytest
from helpers import ROOT

PAGES = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "finetune" / "configs" / "experiments" / "README.md",
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(page.read_text(encoding="utf-8")) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_land(page):
    for target in links(page):
        path, _, anchor = target.partition("#")
        landed = (page.parent / path).resolve() if path else page
        assert landed.exists(), f"{page.name}: {target} is not there"
        if anchor and landed.suffix == ".md":
            assert anchor in anchors(landed), f"{page.name}: {target} names no heading of {landed.name}"


def test_the_readme_reaches_every_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    assert {p.resolve() for p in PAGES[1:]} <= linked
