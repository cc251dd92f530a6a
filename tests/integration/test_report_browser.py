"""The HTML report in a real browser: headless Chromium loads every image, offline.

Needs Debian's `chromium` package (apt-get install chromium); skipped, saying
so, where it is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from PIL import Image

from analysis.report import write_report
from vm_node.sim import SyntheticRun, write_run

CHROMIUM = next(
    (
        path
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (path := shutil.which(name))
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium)"
)

# Appended to a copy of the report: once the page has loaded, it writes on
# <body> how many images there are and which did not decode.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = (img) => img.complete && img.naturalWidth > 0;
  const broken = images.filter((img) => !loaded(img)).map((img) => img.alt);
  document.body.dataset.images = String(images.length);
  document.body.dataset.broken = JSON.stringify(broken);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for trial, rates in enumerate([(1.0, 3.0, 6.0), (2.0, 5.0, 1.0)], 1):
        write_run(
            SyntheticRun(
                rates=rates, duration=30.0, trial=trial, seed=trial, experiment="original"
            ),
            root,
        )
    write_run(
        SyntheticRun(rates=(4.0, 5.0, 5.0), duration=30.0, event_range=5, experiment="variation"),
        root,
    )
    output = root / "report.html"
    write_report([root], output)
    return output


def chromium(*args: str, profile: Path) -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


def test_every_image_in_the_report_loads_in_chromium(report: Path, tmp_path: Path) -> None:
    page = tmp_path / "probed.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom = chromium(
        "--virtual-time-budget=20000", "--dump-dom", page.as_uri(), profile=tmp_path / "profile"
    )
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    images = re.search(r'data-images="(\d+)"', body.group(0))
    broken = re.search(r'data-broken="([^"]*)"', body.group(0))
    assert images and broken, f"the probe did not run: {body.group(0)}"
    # rate effects, model fit, the clocks side by side, 7 per experiment
    assert int(images.group(1)) == 1 + 1 + 1 + 2 * 7
    assert orjson.loads(broken.group(1).replace("&quot;", '"')) == []


def test_the_report_renders_to_a_screenshot_with_content(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    size = "--window-size=1280,2400"
    chromium(
        "--hide-scrollbars", size, f"--screenshot={shot}", report.as_uri(), profile=tmp_path / "p"
    )
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        colours = image.convert("L").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text, tables and figures, not a blank page
