"""Stats charts for admins: revenue, orders and refunds per day as a PNG.

matplotlib is big (tens of MB resident once imported), and the bot draws a chart only when
an admin asks for one, so it is never imported by the bot itself: :func:`render_stats_chart`
runs ``python -m services.charts`` as a child process, hands it the series as JSON on
stdin and reads the PNG from stdout. The event loop never waits on the drawing, and the
memory goes away with the child.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

logger = logging.getLogger(__name__)

#: how long a chart may take to draw (the first run builds matplotlib's font cache)
RENDER_TIMEOUT = 60.0


class ChartError(Exception):
    """The chart could not be drawn (the child failed, timed out or wrote no PNG)."""


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """Texts on the chart, already in the admin's language."""

    title: str
    revenue: str
    orders: str
    refunds: str


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One day of the series: revenue in USD (Decimal), orders and refunds as counts."""

    day: date
    revenue_usd: Decimal
    orders: int
    refunds: int


async def render_stats_chart(
    points: Sequence[DayPoint], labels: ChartLabels, timeout: float = RENDER_TIMEOUT
) -> bytes:
    """A PNG of ``points`` (bars: orders and refunds per day; line: revenue in USD), drawn
    by matplotlib in a child process. Raises :class:`ChartError`."""
    payload = json.dumps(
        {
            "labels": {
                "title": labels.title,
                "revenue": labels.revenue,
                "orders": labels.orders,
                "refunds": labels.refunds,
            },
            "days": [p.day.isoformat() for p in points],
            "revenue": [str(p.revenue_usd) for p in points],
            "orders": [p.orders for p in points],
            "refunds": [p.refunds for p in points],
        }
    ).encode()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.charts",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "MPLBACKEND": "Agg"},
    )  # fmt: skip
    try:
        png, errors = await asyncio.wait_for(process.communicate(payload), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ChartError(f"the chart took more than {timeout:.0f} s") from None
    if process.returncode != 0 or not png.startswith(b"\x89PNG"):
        raise ChartError(
            f"chart process exited with {process.returncode}: "
            f"{errors.decode(errors='replace')[-500:]}"
        )
    return png


def draw(spec: dict[str, Any]) -> bytes:
    """The PNG for one JSON spec (see :func:`render_stats_chart`). Runs in the child only:
    this is the one place that imports matplotlib."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = spec["labels"]
    days = [date.fromisoformat(d).strftime("%d.%m") for d in spec["days"]]
    positions = list(range(len(days)))
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    counts = figure.add_subplot()
    width = 0.4
    counts.bar([x - width / 2 for x in positions], spec["orders"], width, label=labels["orders"])
    counts.bar([x + width / 2 for x in positions], spec["refunds"], width, label=labels["refunds"])
    counts.set_xticks(positions, days, rotation=45 if len(days) > 10 else 0, fontsize=8)
    counts.yaxis.get_major_locator().set_params(integer=True)
    money = counts.twinx()
    # floats only to place pixels; the figures themselves stay Decimal in the CSV
    money.plot(positions, [float(v) for v in spec["revenue"]], color="tab:green", marker="o",
               label=labels["revenue"])  # fmt: skip
    money.set_ylabel("USD")
    handles = counts.get_legend_handles_labels()
    extra = money.get_legend_handles_labels()
    counts.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left", fontsize=8)
    counts.set_title(labels["title"])
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


if __name__ == "__main__":
    sys.stdout.buffer.write(draw(json.loads(sys.stdin.buffer.read())))
