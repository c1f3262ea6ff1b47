"""The leaderboard: a ranking computed from the results store, a web page, a JSON API, an export.

``GET /`` is the page: the ranking table (each team's best and latest submission), a plot of every
scored submission over time (inline SVG made here, no library, no CDN), and ``/board.js``, which
refreshes both from ``GET /api/leaderboard`` every few seconds without reloading. Everything a team
chose (its name, a failure's reason) is escaped on the server and set as text in the browser; the
page's Content-Security-Policy allows only its own script, so a name like ``<script>`` stays text.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
from pathlib import Path
from typing import Any

from kit.hackathon.store import Store, Submission
from kit.serve.threaded import ThreadedServer

REFRESH_S = 3.0
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'"


def _brief(s: Submission) -> dict:
    return {"id": s.id, "status": s.status, "score": s.score, "accuracy": s.accuracy,
            "shifted_accuracy": s.shifted_accuracy, "p95_ms": s.p95_ms, "cpu_s_per_1k": s.cpu_s_per_1k,
            "reason": s.reason, "kind": s.kind, "submitted_at": s.submitted_at, "finished_at": s.finished_at}


def leaderboard(store: Store) -> dict:
    """The ranking: teams with a scored submission by best score (ties: who reached it first), then the rest."""
    by_team: dict[str, list[Submission]] = {}
    for s in store.submissions():
        by_team.setdefault(s.team, []).append(s)
    teams: list[dict[str, Any]] = []
    for team, subs in by_team.items():
        scored = [s for s in subs if s.status == "scored" and s.score is not None]
        best = max(scored, key=lambda s: (s.score, -(s.finished_at or 0))) if scored else None
        teams.append({"team": team, "best": _brief(best) if best else None, "latest": _brief(subs[-1]),
                      "submissions": len(subs)})
    teams.sort(key=lambda t: (t["best"] is None, -(t["best"]["score"] if t["best"] else 0),
                              t["best"]["finished_at"] if t["best"] else 0, t["team"]))
    for rank, entry in enumerate(teams, 1):
        entry["rank"] = rank if entry["best"] else None
    history = [{"team": s.team, "at": s.finished_at, "score": s.score} for s in store.submissions()
               if s.status == "scored" and s.score is not None]
    history.sort(key=lambda h: h["at"] or 0)
    return {"generated_at": time.time(), "teams": teams, "history": history, "counts": store.counts(),
            "svg": plot_svg(history)}


def plot_svg(history: list[dict], width: int = 640, height: int = 240) -> str:
    """Scores over time, one line per team, as an SVG string (every text escaped)."""
    pad = 36
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="scores over time"><rect width="100%" height="100%" fill="#fff"/>']
    x0, x1, y0, y1 = pad, width - 120, height - pad, 12
    for value in (0, 25, 50, 75, 100):
        y = y0 + (y1 - y0) * value / 100
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{value}</text>')
    if not history:
        parts.append(f'<text x="{(x0 + x1) / 2}" y="{height / 2}" text-anchor="middle" font-size="12">'
                     "no scored submission yet</text></svg>")
        return "".join(parts)
    times = [h["at"] for h in history]
    start, span = min(times), max(max(times) - min(times), 1e-9)
    teams = list(dict.fromkeys(h["team"] for h in history))
    for i, team in enumerate(teams):
        colour = COLOURS[i % len(COLOURS)]
        points = [(x0 + (x1 - x0) * (h["at"] - start) / span if len(times) > 1 else (x0 + x1) / 2,
                   y0 + (y1 - y0) * max(0.0, min(100.0, h["score"])) / 100) for h in history if h["team"] == team]
        name = html.escape(team)
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{name}</title></circle>')
        parts.append(f'<text x="{x1 + 8}" y="{y1 + 12 + 14 * i}" font-size="11" fill="{colour}">{name}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{height - 6}" text-anchor="middle" font-size="10">time '
                 f"(first to last score: {span:.0f} s)</text></svg>")
    return "".join(parts)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _latest_text(entry: dict) -> str:
    latest = entry["latest"]
    if latest["status"] == "scored":
        return f"#{latest['id']} scored {_fmt(latest['score'], '.2f')}"
    if latest["status"] == "failed":
        return f"#{latest['id']} FAILED: {(latest['reason'] or '').splitlines()[0]}"
    return f"#{latest['id']} {latest['status']}"


COLUMNS = ("rank", "team", "best score", "accuracy", "shifted", "p95 ms", "CPU-s/1k", "latest", "submissions")


def row_cells(entry: dict) -> list[str]:
    """The text of one table row (the browser script builds the same cells from the JSON)."""
    best = entry["best"] or {}
    return [str(entry["rank"] or "-"), entry["team"], _fmt(best.get("score"), ".2f"),
            _fmt(best.get("accuracy"), ".3f"), _fmt(best.get("shifted_accuracy"), ".3f"),
            _fmt(best.get("p95_ms"), ".1f"), _fmt(best.get("cpu_s_per_1k"), ".2f"), _latest_text(entry),
            str(entry["submissions"])]


def page(data: dict, refresh_s: float = REFRESH_S) -> str:
    """The whole page, rendered on the server (it works without the script; the script keeps it current)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    rows = "".join(
        f'<tr data-team="{html.escape(e["team"])}">' + "".join(f"<td>{html.escape(c)}</td>" for c in row_cells(e))
        + "</tr>" for e in data["teams"])
    counts = ", ".join(f"{n} {status}" for status, n in data["counts"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leaderboard</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}} th{{background:#f4f4f4}}</style></head>
<body data-refresh="{refresh_s:g}"><h1>Leaderboard</h1>
<p id="counts">{html.escape(counts)}</p>
<table id="ranking"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<h2>Scores over time</h2><div id="plot">{data["svg"]}</div>
<p>Updated <span id="updated">{time.strftime("%H:%M:%S", time.localtime(data["generated_at"]))}</span>;
the table refreshes every {refresh_s:g} s from <a href="/api/leaderboard">/api/leaderboard</a>.</p>
<script src="/board.js"></script></body></html>"""


SCRIPT = r"""(function () {
  "use strict";
  var every = 1000 * parseFloat(document.body.dataset.refresh || "3");
  function fmt(v, digits) { return v === null || v === undefined ? "-" : Number(v).toFixed(digits); }
  function latest(e) {
    var l = e.latest;
    if (l.status === "scored") return "#" + l.id + " scored " + fmt(l.score, 2);
    if (l.status === "failed") return "#" + l.id + " FAILED: " + (l.reason || "").split("\n")[0];
    return "#" + l.id + " " + l.status;
  }
  function cells(e) {
    var b = e.best || {};
    return [e.rank === null ? "-" : String(e.rank), e.team, fmt(b.score, 2), fmt(b.accuracy, 3),
            fmt(b.shifted_accuracy, 3), fmt(b.p95_ms, 1), fmt(b.cpu_s_per_1k, 2), latest(e), String(e.submissions)];
  }
  function render(data) {
    var body = document.querySelector("#ranking tbody");
    var rows = document.createDocumentFragment();
    data.teams.forEach(function (e) {
      var tr = document.createElement("tr");
      tr.dataset.team = e.team;
      cells(e).forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    var svg = new DOMParser().parseFromString(data.svg, "image/svg+xml").documentElement;
    document.getElementById("plot").replaceChildren(document.importNode(svg, true));
    document.getElementById("counts").textContent = Object.keys(data.counts).map(function (k) {
      return data.counts[k] + " " + k; }).join(", ");
    document.getElementById("updated").textContent = new Date(data.generated_at * 1000).toLocaleTimeString();
  }
  function refresh() {
    fetch("/api/leaderboard", {cache: "no-store"}).then(function (r) { return r.json(); }).then(render)
      .catch(function () {}).finally(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
"""


def app(db: str | Path, refresh_s: float = REFRESH_S):
    """The Starlette app serving the page, its script and the JSON API from the store at ``db``."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    store = Store(db)
    headers = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "cache-control": "no-store"}

    async def index(_):
        return HTMLResponse(page(leaderboard(store), refresh_s), headers=headers)

    async def api(_):
        return JSONResponse(leaderboard(store), headers=headers)

    async def script(_):
        return Response(SCRIPT, media_type="text/javascript", headers=headers)

    async def no_icon(_):
        return Response(status_code=204)

    return Starlette(routes=[Route("/", index), Route("/api/leaderboard", api), Route("/board.js", script),
                             Route("/favicon.ico", no_icon)])


class BoardServer(ThreadedServer):
    """The board on ``host:port`` in a thread of this process (for the rehearsal and tests)."""

    def __init__(self, db: str | Path, port: int, host: str = "127.0.0.1", refresh_s: float = REFRESH_S) -> None:
        super().__init__(app(db, refresh_s), port, host, name="leaderboard")


EXPORT_FIELDS = ("id", "team", "kind", "target", "status", "score", "accuracy", "shifted_accuracy", "p95_ms",
                 "cpu_s_per_1k", "reason", "attempts", "submitted_at", "finished_at")


def export(store: Store, path: str | Path | None = None) -> str:
    """Every submission and the ranking, as JSON (``.json``, or ``-``) or one CSV row per submission (``.csv``);
    written to ``path`` when given, and returned."""
    fmt = "csv" if path is not None and str(path).endswith(".csv") else "json"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for s in store.submissions():
            writer.writerow({k: getattr(s, k) for k in EXPORT_FIELDS})
        text = buffer.getvalue()
    else:
        data = leaderboard(store)
        data.pop("svg")
        data["submissions"] = [s.as_dict() for s in store.submissions()]
        text = json.dumps(data, indent=2)
    if path is not None and str(path) != "-":
        Path(path).write_text(text)
    return text
