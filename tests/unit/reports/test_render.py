"""Render the recorded fixture run and check every output, from the run directory alone."""

from __future__ import annotations

import base64
import json
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.commands.report import app
from lab.rundir import RunInfo, write_run_info
from reports.render import EXIT_UNUSABLE, render, render_run
from tests.fixtures.make_fixture_run import DEFAULT_OUT, generate

FIXTURE = DEFAULT_OUT
CHARTS = ["queue_depth", "active_vs_waiting", "success_rate", "job_durations", "workers", "provider"]
CRITERIA = ["P1", "P2", "P3", "P4", "P5", "R1", "R2", "R3", "R4", "R5", "O1", "O2", "O3", "E1", "F1", "R6", "M1"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture, for tests that change it."""
    target = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The fixture rendered once (charts take a second each), with its exit code; read only."""
    target = tmp_path_factory.mktemp("rendered") / FIXTURE.name
    shutil.copytree(FIXTURE, target)
    return target, render_run(target)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in ("script", "link", "iframe") or (tag != "img" and (values.get("src") or values.get("href"))):
            self.external.append(tag)
        if tag in ("td", "th"):
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data.strip())


def test_the_fixture_is_what_its_script_generates(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    generate(fresh)
    recorded = sorted(p.relative_to(FIXTURE) for p in FIXTURE.rglob("*") if p.is_file())
    assert recorded == sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    for name in recorded:
        assert (FIXTURE / name).read_bytes() == (fresh / name).read_bytes(), f"{name}: regenerate the fixture"
    assert sum(1 for _ in (FIXTURE / "samples.csv").open()) - 1 == 300


def test_every_file_is_rendered_and_the_run_fails(rendered: tuple[Path, int]) -> None:
    run_dir, code = rendered
    assert code == 1
    for name in ["criteria.json", "summary.json", "junit.xml", "report.html", "report.md"]:
        assert (run_dir / name).stat().st_size > 0, name
    for chart in CHARTS:
        assert (run_dir / "charts" / f"{chart}.png").read_bytes().startswith(PNG), chart
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "FAIL" and summary["exit_code"] == 1
    assert summary["reason"].startswith("P4 Zero data loss: lost = 1, target == 0; duplicated = 1, target == 0")
    assert "R3 Graceful shutdown: max(shutdown_duration) = 34.9 s, target < 30 s" in summary["reason"]
    assert summary["counts"] == {"pass": 3, "fail": 2, "not-measured": 12, "error": 0}
    assert "report.html" in summary["files"] and "charts/provider.png" in summary["files"]
    criteria = json.loads((run_dir / "criteria.json").read_text())
    assert [c["id"] for c in criteria["criteria"]] == CRITERIA


def test_the_html_stands_alone_with_its_charts_and_criteria(rendered: tuple[Path, int]) -> None:
    run_dir, _code = rendered
    text = (run_dir / "report.html").read_text()
    page = _Page()
    page.feed(text)
    assert len(page.images) == len(CHARTS)
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert page.external == []
    assert '<div class="banner fail" id="verdict"><h1>FAIL</h1>' in text
    for header in ["id", "criterion", "seed target", "project target", "measured", "verdict"]:
        assert header in page.cells
    for cid in CRITERIA:
        assert cid in page.cells
    assert "max(shutdown_duration) = 34.9 s" in page.cells
    assert "Jobs lost" in page.cells  # the checker's table


def test_junit_has_one_case_per_criterion_with_the_right_failures(rendered: tuple[Path, int]) -> None:
    run_dir, _code = rendered
    root = ET.parse(run_dir / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == (
        "17",
        "2",
        "12",
        "0",
    )
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    assert list(cases) == CRITERIA
    failed = {cid for cid, c in cases.items() if c.find("failure") is not None}
    skipped = {cid for cid, c in cases.items() if c.find("skipped") is not None}
    assert failed == {"P4", "R3"}
    assert skipped == {"P1", "P3", "R2", "R4", "R5", "O1", "O2", "O3", "E1", "F1", "R6", "M1"}
    failure = cases["R3"].find("failure")
    assert failure is not None and failure.get("message") == "max(shutdown_duration) = 34.9 s, target < 30 s"


def test_markdown_leads_with_the_verdict(rendered: tuple[Path, int]) -> None:
    run_dir, _code = rendered
    lines = (run_dir / "report.md").read_text().splitlines()
    assert lines[0] == "# ❌ FAIL: redis-failover"
    assert lines[2].startswith("> **FAIL** — P4 Zero data loss")
    text = "\n".join(lines)
    assert "![Queue depth](charts/queue_depth.png)" in text
    assert "| ❌ | R3 | Graceful shutdown |" in text


def test_a_repaired_run_passes(run_dir: Path) -> None:
    checker = json.loads((run_dir / "checker.json").read_text())
    checker["totals"].update(lost=0, duplicated=0)
    (run_dir / "checker.json").write_text(json.dumps(checker))
    lines = (run_dir / "measurements.jsonl").read_text().splitlines()
    (run_dir / "measurements.jsonl").write_text("\n".join(line for line in lines if "34.9" not in line) + "\n")
    assert render_run(run_dir) == 0
    assert '<div class="banner pass" id="verdict"><h1>PASS</h1>' in (run_dir / "report.html").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["reason"] == (
        "5 criteria met, none failed; 12 not measured in this run"
    )


def test_rendering_twice_gives_the_same_verdicts(run_dir: Path) -> None:
    first = render(run_dir)
    criteria = (run_dir / "criteria.json").read_text()
    second = render(run_dir)
    assert (run_dir / "criteria.json").read_text() == criteria
    assert first.exit_code == second.exit_code == 1


def test_a_run_with_only_run_json_still_gets_a_report(run_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    info = RunInfo.model_validate_json((run_dir / "run.json").read_text())
    write_run_info(bare, info)
    assert render_run(bare) == 0  # nothing failed; the report says nothing was measured
    summary = json.loads((bare / "summary.json").read_text())
    assert summary["missing_inputs"] == ["acknowledged.csv", "samples.csv", "checker.json"]
    assert summary["reason"].startswith("no criterion failed, but none was measured")
    assert "The checker did not run" in (bare / "report.html").read_text()
    assert not list((bare / "charts").glob("*.png"))


def test_unreadable_inputs_give_no_verdict(tmp_path: Path) -> None:
    assert render_run(tmp_path / "nowhere") == EXIT_UNUSABLE
    (tmp_path / "run.json").write_text("{not json")
    assert render_run(tmp_path) == EXIT_UNUSABLE


def test_drill_report_command_exits_with_the_verdict(run_dir: Path) -> None:
    result = CliRunner().invoke(app, [str(run_dir)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("FAIL: P4 Zero data loss")
    bad = CliRunner().invoke(app, [str(run_dir), "--gate", "strictest"])
    assert bad.exit_code == 2
