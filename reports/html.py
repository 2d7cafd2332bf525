"""report.html: one self-contained file (charts inlined as base64, CSS inline, no scripts).

It must open from a CI artifact, a mail attachment or an air-gapped laptop years later, so it
references nothing outside itself. Every value is escaped: store ids and error messages come
from the system under test.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from lab.criteria import Verdict
from reports.charts import Chart
from reports.data import RunData
from reports.experiments import ExperimentSection
from reports.facts import (
    DURATION_HEADER,
    checker_rows,
    criteria_rows,
    duration_table,
    failure_reasons,
    finding_tables,
    run_facts,
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:0 24px 48px}
.banner{padding:28px 24px;color:#fff;margin-bottom:24px}
.banner.pass{background:#1e7b34}.banner.fail{background:#b3261e}
.banner h1{font-size:56px;margin:0;letter-spacing:2px}
.banner .reason{font-size:20px;margin-top:8px;max-width:1200px}
.banner .sub{opacity:.85;margin-top:6px}
h2{margin-top:36px;border-bottom:2px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px;width:100%}
th,td{border:1px solid #d9d9de;padding:6px 9px;text-align:left;vertical-align:top;font-size:14px}
th{background:#eceef2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:13px;background:#f0f0f3;padding:1px 4px;border-radius:3px}
.v{font-weight:700;padding:2px 8px;border-radius:10px;white-space:nowrap}
.v.pass{background:#d7f0dc;color:#1e7b34}.v.fail,.v.error{background:#fbd9d6;color:#b3261e}
.v.not-measured{background:#ececec;color:#555}
tr.problem td{background:#fff1f0}
.desc{color:#555;font-size:13px}
figure{background:#fff;border:1px solid #d9d9de;margin:16px 0;padding:12px}
figure img{max-width:100%;height:auto;display:block}
figcaption{color:#444;font-size:14px;margin-top:6px}
.muted{color:#666}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _criteria(data: RunData) -> str:
    rows = []
    for r in criteria_rows(data):
        rows.append(
            [
                f"<b>{_e(r.id)}</b>",
                f"<b>{_e(r.title)}</b><div class='desc'>{_e(r.description)}</div>",
                f"{_e(r.seed_target)}<div class='desc'><code>{_e(r.seed_thresholds)}</code></div>",
                f"<code>{_e(r.project_target)}</code>" if r.project_target != "—" else "—",
                f"{_e(r.measured)}<div class='desc'>{_e(r.reason) if r.verdict is not Verdict.PASS else ''}</div>",
                f"<span class='v {r.verdict.value}'>{_e(r.verdict_label)}</span>",
                _e(r.project_label),
            ]
        )
    return _table(["id", "criterion", "seed target", "project target", "measured", "verdict", "project"], rows)


def _checker(data: RunData) -> str:
    rows = checker_rows(data)
    if not rows:
        return "<p class='muted'>The checker did not run: this run has no checker.json.</p>"
    parts = [
        _table(
            ["", "count", "meaning"],
            [[_e(r.label), f"<b>{_e(r.value)}</b>" if r.problem else _e(r.value), _e(r.meaning)] for r in rows],
            ["problem" if r.problem else "" for r in rows],
        )
    ]
    reasons = failure_reasons(data)
    if reasons:
        parts.append("<h3>Failure reasons</h3>" + _table(["reason", "jobs"], [[_e(r), str(n)] for r, n in reasons]))
    for category, columns, table_rows, more in finding_tables(data):
        parts.append(f"<h3>{_e(category.replace('_', ' ').capitalize())}</h3>")
        parts.append(_table(columns, [[_e(c) for c in row] for row in table_rows]))
        if more:
            parts.append(f"<p class='muted'>…and {more} more (all counted above; first ones in checker.json).</p>")
    if data.check and data.check.sources_unchecked:
        parts.append("<h3>Sources not checked for missing items</h3>")
        parts.append(
            _table(
                ["company", "source", "why"],
                [[_e(s["company_id"]), _e(s["source"]), _e(s["reason"])] for s in data.check.sources_unchecked],
            )
        )
    return "".join(parts)


def _durations(data: RunData) -> str:
    rows = duration_table(data)
    if not rows:
        return ""
    body = _table(DURATION_HEADER, [[_e(c) for c in row] for row in rows])
    return (
        f"<h2>Job durations by catalog size</h2><p class='muted'>Submit to COMPLETED, as the clients saw it.</p>{body}"
    )


def _charts(charts: list[Chart]) -> str:
    parts = []
    for chart in charts:
        if chart.path is None:
            parts.append(f"<figure><b>{_e(chart.title)}</b><figcaption>{_e(chart.caption)}</figcaption></figure>")
        else:
            parts.append(
                f"<figure><img alt='{_e(chart.title)}' src='{_image(chart.path)}'>"
                f"<figcaption><b>{_e(chart.title)}.</b> {_e(chart.caption)}</figcaption></figure>"
            )
    return "".join(parts)


def _experiments(sections: list[ExperimentSection]) -> str:
    """One block per experiment run: timeline, figures vs targets, checks, checker, journal."""
    parts = []
    for s in sections:
        state = "pass" if s.verdict == "PASS" else "fail"
        parts.append(
            f"<h3 id='{_e(s.journal.slug)}'><span class='v {state}'>{_e(s.verdict)}</span> {_e(s.title)}</h3>"
            f"<p class='desc'>{_e(s.journal.description)}</p>"
        )
        if s.chart is not None:
            parts.append(
                f"<figure><img alt='{_e(s.journal.slug)}' src='{_image(s.chart)}'>"
                f"<figcaption>{_e(s.chart_caption)}</figcaption></figure>"
            )
        else:
            parts.append(f"<p class='muted'>{_e(s.chart_caption)}</p>")
        parts.append(_table(["", ""], [[f"<b>{_e(k)}</b>", _e(v)] for k, v in s.details]))
        if s.figures:
            parts.append("<h4>Recovery figures</h4>")
            rows = []
            for f in s.figures:
                verdict = f"<span class='v {'fail' if f.verdict == 'FAIL' else 'pass'}'>{_e(f.verdict)}</span>"
                rows.append(
                    [
                        f"<b>{_e(f.metric)}</b>",
                        _e(f.measured),
                        _e(f.target),
                        f"<code>{_e(f.project)}</code>" if f.project != "—" else "—",
                        verdict if f.verdict else "—",
                        f"<span class='desc'>{_e(f.meaning)}</span>",
                    ]
                )
            parts.append(_table(["figure", "measured", "seed target", "project target", "verdict", "meaning"], rows))
        if s.journal.checks:
            parts.append("<h4>Checks</h4>")
            parts.append(
                _table(
                    ["", "check", "detail"],
                    [
                        [
                            f"<span class='v {'pass' if c.passed else 'fail'}'>{'pass' if c.passed else 'FAIL'}</span>",
                            _e(c.name),
                            _e(c.detail),
                        ]
                        for c in s.journal.checks
                    ],
                    ["" if c.passed else "problem" for c in s.journal.checks],
                )
            )
        if s.checker:
            parts.append("<h4>Data-loss checker (this run's jobs)</h4>")
            parts.append(
                _table(
                    ["", "count"],
                    [[_e(label), f"<b>{_e(value)}</b>" if bad else _e(value)] for label, value, bad in s.checker],
                    ["problem" if bad else "" for _, _, bad in s.checker],
                )
            )
        parts.append("<h4>Journal</h4>")
        parts.append(
            _table(
                ["phase", "type", "activity", "start (s)", "took (s)", "status", "output"],
                [[_e(c) for c in row] for row in s.activities],
                ["problem" if row[5] != "succeeded" else "" for row in s.activities],
            )
        )
    return "".join(parts)


def html(data: RunData, charts: list[Chart], experiments: list[ExperimentSection] | None = None) -> str:
    ev = data.evaluation
    state = "pass" if ev.passed else "fail"
    facts = _table(["", ""], [[f"<b>{_e(k)}</b>", _e(v)] for k, v in run_facts(data)])
    title = f"{ev.verdict}: {data.info.scenario} ({data.info.run_id})"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<div class="banner {state}" id="verdict"><h1>{_e(ev.verdict)}</h1>
<div class="reason">{_e(ev.reason)}</div>
<div class="sub">{_e(data.info.scenario)} · {_e(data.info.kind)} run · {_e(data.info.run_id)} ·
judged on the {_e(ev.gate)} targets · exit code {ev.exit_code}</div></div>
<main>
<h2>Run</h2>{facts}
<h2>Success criteria</h2>{_criteria(data)}
{_durations(data)}
{"<h2>Chaos experiments</h2>" + _experiments(experiments) if experiments else ""}
<h2>Charts</h2>{_charts(charts)}
<h2>Data-loss checker</h2>{_checker(data)}
</main></body></html>
"""


def write_html(
    data: RunData, charts: list[Chart], path: Path, experiments: list[ExperimentSection] | None = None
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html(data, charts, experiments), encoding="utf-8")
    tmp.replace(path)
