"""The Snakemake report renders: build a tiny report (the project's front page, one PNG, one TSV)
with `snakemake --report`, screenshot it in headless Chromium, check it is not blank and
that the HTML holds the items. Independent of the full chain."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _snakefile(root: Path) -> str:
    return textwrap.dedent(f'''
        configfile: "{root / "config" / "config.yaml"}"


        report: "{root / "workflow" / "report" / "workflow.rst"}"


        rule all:
            input:
                "out/plot.png",
                "out/table.tsv",


        rule make_items:
            output:
                png=report("out/plot.png", caption="caption.rst", category="Statistics",
                           labels={{"item": "tiny figure"}}),
                tsv=report("out/table.tsv", caption="caption.rst", category="Statistics",
                           labels={{"item": "tiny table"}}),
            run:
                import matplotlib
                matplotlib.use("Agg")
                import matplotlib.pyplot as plt
                fig, ax = plt.subplots(figsize=(3, 2))
                ax.plot([0, 1, 2], [0, 1, 0], color="tab:orange", lw=4)
                fig.savefig(output.png)
                with open(output.tsv, "w") as fh:
                    fh.write("cluster\\tauc\\n1\\t0.75\\n")
        ''')


@pytest.fixture(scope="module")
def report_html(tmp_path_factory, repo_root):
    d = tmp_path_factory.mktemp("report")
    (d / "Snakefile").write_text(_snakefile(repo_root))
    (d / "caption.rst").write_text("Tiny caption: uptake of cluster 1, n = 2, side I.\n")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(d / "Snakefile"), "--directory", str(d), "--cores", "1"]
    for extra in ([], ["--report", str(d / "report.html")]):
        run = subprocess.run(cmd + extra, capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
    return d / "report.html"


def test_report_contains_items(report_html):
    html = report_html.read_text(errors="replace")
    for needle in ("plot.png", "table.tsv", "Statistics", "Tiny caption", "tiny figure",
                   "datxai: DAT-SPECT", "ipsilateral"):  # front page rendered from workflow/report/workflow.rst
        assert needle in html, f"{needle!r} missing from the report"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs the Debian package 'chromium')")
def test_report_screenshot_not_blank(report_html, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
           "--virtual-time-budget=5000", f"--screenshot={shot}", "--window-size=1200,900",
           report_html.resolve().as_uri()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"no screenshot (exit {run.returncode}): {run.stderr[-2000:]}"
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (900, 1200)
    # a rendered page has text and colour: many distinct grey levels and non-trivial contrast
    grey = (img.mean(axis=2) * 255).astype(int)
    assert grey.std() > 10, "the screenshot is (nearly) uniform: the report did not render"
    assert len(set(grey.ravel().tolist())) > 20
