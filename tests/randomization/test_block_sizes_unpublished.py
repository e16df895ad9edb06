"""Block sizes help a recruiter predict the next allocation: the README and the preset comments
do not name them, and the README tells protocols not to publish them to recruiters. (Pages and
e-mails: tests/randomization/test_desk_views.py and test_allocation_notice.py.)"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "imrtrial" / "presets").glob("*.yaml"))
NUMBER = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
# "blocks of 6/8/10", "fixed blocks of five", "block sizes 6, 8 and 10", "block size: 4"
NAMES_A_SIZE = re.compile(rf"(?i)\bblock(?:s| sizes?)?\b[^.\n]{{0,20}}?\b{NUMBER}\b")


def comments(path):
    return [m.group(1) for m in re.finditer(r"(?m)(?:^|\s)#(.*)$", path.read_text())]


def test_the_presets_are_found():
    assert len(PRESETS) >= 2
    assert all(yaml.safe_load(p.read_text())["design"].get("block_sizes") for p in PRESETS)


def test_the_readme_names_no_block_size_and_says_protocols_should_not_publish_them():
    readme = (ROOT / "README.md").read_text()
    assert NAMES_A_SIZE.findall(readme) == []
    for path in PRESETS:
        sizes = yaml.safe_load(path.read_text())["design"]["block_sizes"]
        if len(sizes) > 1:
            assert not re.search(r"\W{1,5}".join(map(str, sizes)), readme), path.name
    assert re.search(r"(?i)should not publish block sizes", readme)
    assert "recruit" in readme


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_comments_name_no_block_size(path):
    assert [c for c in comments(path) if NAMES_A_SIZE.search(c)] == []
