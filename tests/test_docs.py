"""The README's settings table is generated from hks.config, the single source of truth."""

import re
from pathlib import Path

from hks.config import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def test_readme_settings_table_is_current():
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", readme, flags=re.S)
    assert found, "README.md lost its settings markers"
    assert found.group(1) == markdown_table(), (
        "README.md's settings table is stale: regenerate it from `python -m hks settings`")


def test_every_doc_the_readme_links_exists():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(((?:docs/)?[A-Za-z_]+\.md)\)", readme):
        assert (ROOT / target).is_file(), target
