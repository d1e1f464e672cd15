//! The report's pictures, as SVG files (plotters' SVG backend: text stays
//! text, so no fonts are needed to draw, and any browser shows them): per
//! run, logical clock against system time, queue length against time,
//! drift against time, and a histogram of clock jumps per machine; for a
//! sweep, jump size and drift against the internal-event probability.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::analysis::Run;

/// One colour per machine, the same in every figure.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

pub fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

const SIZE: (u32, u32) = (900, 480);

type Res = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Writes `svg` (drawn by `draw` into a string) to `path`.
fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Res,
) -> Res {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))
}

/// One line of a chart: its label, colour (index) and points.
type Series = (String, usize, Vec<(f64, f64)>);

/// The x axis of a line chart.
struct XAxis {
    desc: &'static str,
    /// Fixed range end; `None`: the data's.
    max: Option<f64>,
    /// A dot on every point (few points, each a measurement).
    dots: bool,
    legend: SeriesLabelPosition,
}

const TIME: XAxis = XAxis {
    desc: "system time since the run began (s)",
    max: None,
    dots: false,
    legend: SeriesLabelPosition::UpperLeft,
};

/// A line per series on one chart.
fn lines(path: &Path, title: &str, x: XAxis, y_desc: &str, series: &[Series]) -> Res {
    let x_max = x.max.unwrap_or_else(|| {
        series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.0))
            .fold(1.0_f64, f64::max)
    });
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.05;
    write_svg(path, SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x.desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (label, c, pts) in series {
            let colour = colour(*c);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            if x.dots {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                    .map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .position(x.legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)
    })
}

fn machine_label(run: &Run, i: usize) -> String {
    let m = &run.machines[i];
    format!("{} ({}/s)", m.name, m.rate)
}

/// Every machine's line of `points` (time, value) on one chart.
fn per_machine(
    run: &Run,
    path: &Path,
    title: &str,
    y_desc: &str,
    points: impl Fn(&super::analysis::Machine) -> &[(f64, u64)],
) -> Res {
    let series: Vec<Series> = run
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let pts = points(m).iter().map(|&(t, v)| (t, v as f64)).collect();
            (machine_label(run, i), i, pts)
        })
        .collect();
    lines(
        path,
        &format!("{}: {title}", run.name),
        TIME,
        y_desc,
        &series,
    )
}

/// `<run>-clock.svg`: every machine's logical clock against system time.
pub fn clock(run: &Run, path: &Path) -> Res {
    per_machine(
        run,
        path,
        "logical clock against system time",
        "logical clock",
        |m| &m.clock_at,
    )
}

/// `<run>-queue.svg`: every machine's network queue length against time.
pub fn queue(run: &Run, path: &Path) -> Res {
    per_machine(run, path, "network queue length", "messages waiting", |m| {
        &m.queue_at
    })
}

/// `<run>-drift.svg`: max clock - min clock against time.
pub fn drift(run: &Run, path: &Path) -> Res {
    let pts = run.drift_at.iter().map(|&(t, d)| (t, d as f64)).collect();
    lines(
        path,
        &format!("{}: drift (max clock - min clock)", run.name),
        TIME,
        "drift (ticks of the logical clock)",
        &[("drift".to_string(), 7, pts)],
    )
}

/// `<run>-jumps.svg`: a histogram of clock jumps per machine, side by side.
pub fn jumps(run: &Run, path: &Path) -> Res {
    let n = run.machines.len().max(1);
    let width = (300 * n as u32).clamp(600, 1800);
    write_svg(path, (width, 420), |root| {
        let root = root
            .titled(
                &format!("{}: clock jumps per tick (new clock - old clock)", run.name),
                ("sans-serif", 20),
            )
            .map_err(err)?;
        let panels = root.split_evenly((1, n));
        for (i, (m, area)) in run.machines.iter().zip(panels.iter()).enumerate() {
            let top = m.max_jump().max(1) as u32;
            let mut counts = vec![0u32; top as usize + 1];
            for &j in &m.jumps {
                counts[j as usize] += 1;
            }
            let y_max = counts.iter().copied().max().unwrap_or(1).max(1) + 1;
            let mut chart = ChartBuilder::on(area)
                .caption(machine_label(run, i), ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d((1u32..top + 1).into_segmented(), 0u32..y_max)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc("jump")
                .y_desc("ticks")
                .draw()
                .map_err(err)?;
            // One bar per jump size, drawn in order (so the same run
            // gives the same file).
            let bars = counts
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, c)| **c > 0)
                .map(|(j, &c)| {
                    let j = j as u32;
                    let mut bar = Rectangle::new(
                        [(SegmentValue::Exact(j), 0), (SegmentValue::Exact(j + 1), c)],
                        colour(i).filled(),
                    );
                    bar.set_margin(0, 0, 1, 1);
                    bar
                });
            chart.draw_series(bars).map_err(err)?;
        }
        Ok(())
    })
}

/// A sweep's chart: one line per rate spread, `value` against the
/// internal-event probability.
pub fn sweep(path: &Path, title: &str, y_desc: &str, lines: &[(String, Vec<(f64, f64)>)]) -> Res {
    let series: Vec<Series> = lines
        .iter()
        .enumerate()
        .map(|(i, (label, pts))| (label.clone(), i, pts.clone()))
        .collect();
    let x = XAxis {
        desc: "probability of an internal event",
        max: Some(1.0),
        dots: true,
        legend: SeriesLabelPosition::UpperRight,
    };
    self::lines(path, title, x, y_desc, &series)
}
