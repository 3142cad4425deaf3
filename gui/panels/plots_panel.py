"""Live plots of a run: loss, validation metric, learning rate, memory per rank, throughput.

Follows pyqtgraph's own advice: every curve is created once and fed with setData from a timer
(10 Hz) only when the :class:`RunHistory` changed; curves downsample by peaks and clip to the view,
so 100k points stay fluid. The step axes are linked: zooming one zooms all. A second run can be
overlaid (dashed) to compare.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from frelon.gui import theme
from frelon.gui.run_history import RunHistory, Series
from frelon.gui.widgets.labels import WrapLabel
from frelon.gui.widgets.plot_legend import legend_below
from frelon.gui.widgets.rank_heartbeats import RankHeartbeats

REFRESH_HZ = 10
PART_STYLES = {"heatmap": Qt.PenStyle.DashLine, "size": Qt.PenStyle.DotLine, "offset": Qt.PenStyle.DashDotLine}
MEMORY_STYLES = {"allocated": Qt.PenStyle.SolidLine, "peak": Qt.PenStyle.DashLine,
                 "reserved": Qt.PenStyle.DotLine, "rss": Qt.PenStyle.SolidLine}


def _curve(plot: pg.PlotItem, name: str, color: str, width: float = 1.5,
           style: Qt.PenStyle = Qt.PenStyle.SolidLine, symbol: str | None = None) -> pg.PlotDataItem:
    """A curve that joins the legend only while it has data (an empty entry only confuses)."""
    item = plot.plot([], [], pen=pg.mkPen(color, width=width, style=style),
                     symbol=symbol, symbolSize=7, symbolBrush=color, symbolPen=None, connect="finite")
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)
    item.legend_name = name
    item.legend = plot.legend
    item.setVisible(False)
    return item


def _include_zero(plot: pg.PlotItem) -> None:
    """An invisible point at y = 0 keeps 0 in the auto range, so levels read as levels."""
    anchor = pg.ScatterPlotItem([0], [0], size=1, pen=None, brush=(0, 0, 0, 0))
    plot.addItem(anchor)


def _series(xs, ys) -> Series:
    s = Series(max(1, len(xs)))
    for x, y in zip(xs, ys):
        s.append(float(x), float(y))
    return s


class PlotsPanel(QWidget):
    redrawn = Signal(int)        # the history version just drawn (benchmarks measure latency with it)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self.history = RunHistory()
        self.compare: RunHistory | None = None
        self._drawn = (-1, -1)
        self._x_span = 0
        self._preview: Series | None = None

        self.summary = WrapLabel("No run yet: press Start (Ctrl+R), or pick a past run in Runs.")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.graphics = pg.GraphicsLayoutWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        self.ranks = RankHeartbeats()           # several ranks: their heartbeats, a stall
        layout.addWidget(self.ranks)
        layout.addWidget(self.graphics, 1)
        self._make_plots()
        self._make_curves()
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / REFRESH_HZ))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def _make_plots(self) -> None:
        """The six plots, two rows of three, sharing the step axis."""
        g = self.graphics
        self.loss_plot = self._plot(g.addPlot(row=0, col=0), "Loss (log scale)", "loss")
        self.val_plot = self._plot(g.addPlot(row=0, col=1), "Validation", "accuracy")
        self.lr_plot = self._plot(g.addPlot(row=0, col=2), "Learning rate", "LR")
        self.mem_plot = self._plot(g.addPlot(row=1, col=0), "Memory per rank", "memory", units="B")
        self.act_plot = self._plot(g.addPlot(row=1, col=1), "Activation memory", "saved for backward", units="B")
        self.speed_plot = self._plot(g.addPlot(row=1, col=2), "Throughput", "images/s")
        for p in (self.val_plot, self.lr_plot, self.mem_plot, self.act_plot, self.speed_plot):
            p.setXLink(self.loss_plot)
        for p in (self.loss_plot, self.val_plot, self.lr_plot, self.speed_plot):
            p.getAxis("left").enableAutoSIPrefix(False)     # 0.5 stays 0.5, not "500 (x0.001)"
        for p in (self.lr_plot, self.mem_plot, self.act_plot, self.speed_plot):
            _include_zero(p)                                # a flat memory line is not "500.0000002 MB"
        self.loss_plot.setLogMode(x=False, y=True)          # one bad validation epoch must not flatten the rest
        self.val_plot.setYRange(0, 1.0, padding=0.02)       # accuracy and mAP live in [0, 1]
        self.val_plot.enableAutoRange(axis="y", enable=False)

    def _make_curves(self) -> None:
        """Every curve, in the order the legends list them (per-part and per-rank ones come with the events)."""
        self.c_loss = _curve(self.loss_plot, "step loss", theme.LOSS_RAW, 1)
        self.c_smooth = _curve(self.loss_plot, "smoothed", theme.LOSS_SMOOTH, 2)
        self.c_train_epoch = _curve(self.loss_plot, "train (epoch)", theme.LOSS_SMOOTH, 1,
                                    Qt.PenStyle.DashLine, symbol="s")
        self.c_val_loss = _curve(self.loss_plot, "validation", theme.VALIDATION, 2, symbol="o")
        self.c_parts: dict[str, pg.PlotDataItem] = {}
        self.c_metric = _curve(self.val_plot, "validation", theme.VALIDATION, 2, symbol="o")
        self.c_lr_preview = _curve(self.lr_plot, "planned", theme.PREVIEW, 1.5, Qt.PenStyle.DashLine)
        self.c_lr = _curve(self.lr_plot, "actual", theme.LOSS_SMOOTH, 2)
        self.c_memory: dict[tuple[int, str], pg.PlotDataItem] = {}
        self.c_activation = _curve(self.act_plot, "activations", theme.PALETTE[4], 2)
        self.c_speed = _curve(self.speed_plot, "images/s", theme.PALETTE[2], 1.5)
        self.c_cmp_loss = _curve(self.loss_plot, "compared run", theme.COMPARE, 2, Qt.PenStyle.DashLine)
        self.c_cmp_metric = _curve(self.val_plot, "compared run", theme.COMPARE, 2, Qt.PenStyle.DashLine, "t")
        self.c_cmp_lr = _curve(self.lr_plot, "compared run", theme.COMPARE, 1.5, Qt.PenStyle.DashLine)

    @staticmethod
    def _plot(plot: pg.PlotItem, title: str, left: str, units: str | None = None) -> pg.PlotItem:
        plot.setTitle(title)
        plot.setLabel("left", left, units=units)
        plot.setLabel("bottom", "step")
        # no grid: pyqtgraph draws it with alpha-blended lines on every axis repaint, which was
        # about a third of each redraw (bench/gui_latency.py)
        legend_below(plot, labelTextSize="8pt", verSpacing=-6)     # off the data, not over it
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        return plot

    # ---- feeding ----
    def set_history(self, history: RunHistory) -> None:
        self.history = history
        self.ranks.clear()
        for item in list(self.c_memory.values()):
            self.mem_plot.removeItem(item)
            item.legend.removeItem(item)
        self.c_memory.clear()
        for item in list(self.c_parts.values()):
            self.loss_plot.removeItem(item)
            item.legend.removeItem(item)
        self.c_parts.clear()
        self._drawn = (-1, -1)
        self._x_span = 0
        for plot in self._plots():
            plot.enableAutoRange(axis="x", enable=True)
        self.refresh()

    def _plots(self) -> tuple[pg.PlotItem, ...]:
        return (self.loss_plot, self.val_plot, self.lr_plot, self.mem_plot, self.act_plot, self.speed_plot)

    def _fix_x_span(self, total: int) -> None:
        """Once the plan is known the step axes span the whole run: curves grow to the right, the
        planned LR shows what is to come, and the axes are not redrawn on every refresh."""
        if total and total != self._x_span:
            self._x_span = total
            for plot in self._plots():
                plot.enableAutoRange(axis="x", enable=False)
            self.loss_plot.setXRange(0, total, padding=0.02)

    def set_compare(self, history: RunHistory | None) -> None:
        self.compare = history
        self._drawn = (-1, -1)
        self.refresh()

    def set_lr_preview(self, steps: list[int], lrs: list[float]) -> None:
        """The planned schedule (from the Model & training panel, or the engine's own plan)."""
        self._preview = _series(steps, lrs)
        if not (self.history.started or {}).get("lr_schedule"):     # a shown run's own plan wins
            self._set(self.c_lr_preview, self._preview)

    # ---- drawing ----
    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        if not self.isVisible():        # hidden behind another tab: draw when shown again
            return
        h = self.history
        self._feed_ranks(h)
        version = (h.version, self.compare.version if self.compare else -1)
        if version == self._drawn:
            return
        self._drawn = version
        self._fix_x_span(h.total_steps)
        self._set(self.c_loss, h.loss)
        self._set(self.c_smooth, h.loss_smooth)
        self._set(self.c_train_epoch, h.train_loss_epoch)
        self._set(self.c_val_loss, h.val_loss)
        self._set(self.c_metric, h.val_metric)
        self.val_plot.setLabel("left", h.metric_name)
        self._set(self.c_lr, h.lr)
        self._set(self.c_speed, h.throughput)
        wait = (h.last_step or {}).get("data_wait")
        self.speed_plot.setTitle("Throughput" + (f" · waiting for data {wait:.0%}" if isinstance(wait, (int, float)) else ""))
        self._set(self.c_activation, h.activation)
        for name, series in h.loss_parts.items():
            if name not in self.c_parts:
                self.c_parts[name] = _curve(self.loss_plot, name, theme.PALETTE[3 + len(self.c_parts)], 1.2,
                                            PART_STYLES.get(name, Qt.PenStyle.DashLine))
            self._set(self.c_parts[name], series)
        for key, series in h.memory.items():
            if key not in self.c_memory:
                rank, kind = key
                self.c_memory[key] = _curve(self.mem_plot, f"rank {rank} {kind}", theme.PALETTE[rank % 16],
                                            1.5, MEMORY_STYLES.get(kind, Qt.PenStyle.SolidLine))
            self._set(self.c_memory[key], series)
        planned = (h.started or {}).get("lr_schedule")
        if planned:      # the engine's own plan wins over the panel's preview
            pts = np.asarray(planned, float).reshape(-1, 2)
            self._set(self.c_lr_preview, _series(pts[:, 0], pts[:, 1]))
        else:
            self._set(self.c_lr_preview, self._preview)
        c = self.compare
        self._set(self.c_cmp_loss, c.loss_smooth if c else None)
        self._set(self.c_cmp_metric, c.val_metric if c else None)
        self._set(self.c_cmp_lr, c.lr if c else None)
        self.summary.setText(self._summary_text())
        self.redrawn.emit(h.version)

    def _feed_ranks(self, h: RunHistory) -> None:
        """The heartbeat lights age every tick, not only when an event arrives."""
        if h.heartbeat is not None and h.heartbeat is not self.ranks.beat:
            self.ranks.add(h.heartbeat)
        if h.stall is not None and h.stall is not self.ranks.stall:
            self.ranks.add(h.stall)
        self.ranks.refresh()

    @staticmethod
    def _set(item: pg.PlotDataItem, series: Series | None) -> None:
        show = series is not None and len(series) > 0
        if show:
            item.setData(series.x, series.y)
        elif item.isVisible():
            item.setData([], [])
        if show != item.isVisible():
            item.setVisible(show)
            if show:
                item.legend.addItem(item, item.legend_name)
            else:
                item.legend.removeItem(item)

    def _summary_text(self) -> str:
        h = self.history
        if not h.started and not len(h.loss):
            return "No run yet: press Start (Ctrl+R), or pick a past run in Runs."
        s = h.started or {}
        parts = [f"<b>{s.get('backbone', '?')}</b> · {s.get('task', '?')} · {s.get('device', '?')}"
                 f" × {s.get('world_size', 1)}",
                 f"global batch {s.get('global_batch', '?')}",
                 f"effective LR {s.get('effective_lr', 0):.3g}"]
        if h.last_step:
            st = h.last_step
            parts.append(f"step {st.get('step', 0)}/{h.total_steps or '?'} · loss {st.get('loss') or 0:.4g}")
        if len(h.val_metric):
            parts.append(f"val {h.metric_name} {h.val_metric.y[-1]:.3g}")
        if h.finished:
            parts.append(f"<b>{h.finished.get('status')}</b>")
        if self.compare is not None and self.compare.started:
            parts.append(f"<span style='color:{theme.COMPARE}'>compared with "
                         f"{self.compare.started.get('run_dir', '').rstrip('/').split('/')[-1]}</span>")
        return " · ".join(parts)
