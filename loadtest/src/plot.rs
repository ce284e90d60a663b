//! `--plot FILE.svg`: a run's timeline drawn as two charts, what was done a second
//! (messages received, connections joined, cycles) and the latency percentiles, second
//! by second (plotters, SVG).

use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::live::Point;

/// Draws `timeline` into an SVG file at `path`, titled `title`; `what` names what a
/// point counts (`messages received`) and `latency` what its percentiles measure.
pub fn draw(timeline: &[Point], title: &str, what: &str, latency: &str, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let seconds = |point: &Point| point.t_s;
    let rate_line = timeline.iter().map(|point| (seconds(point), point.per_s)).collect::<Vec<_>>();
    let rate = [("per second", rate_line)];
    let rate_caption = format!("{what} a second");
    // Seconds in which latency was measured (a storm measures none: one panel).
    let measured: Vec<&Point> = timeline.iter().filter(|point| point.p50_us > 0).collect();
    if measured.is_empty() {
        panel(&root, &rate_caption, &rate)?;
    } else {
        let (upper, lower) = root.split_vertically(root.dim_in_pixel().1 / 2);
        panel(&upper, &rate_caption, &rate)?;
        let ms = |micros: u64| micros as f64 / 1e3;
        let percentiles = [
            ("p50", measured.iter().map(|point| (seconds(point), ms(point.p50_us))).collect()),
            ("p99", measured.iter().map(|point| (seconds(point), ms(point.p99_us))).collect()),
            ("p99.9", measured.iter().map(|point| (seconds(point), ms(point.p999_us))).collect()),
        ];
        panel(&lower, &format!("{latency} (ms)"), &percentiles)?;
    }
    root.present().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    lines: &[(&str, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    let points = || lines.iter().flat_map(|(_, points)| points.iter());
    let right = points().map(|point| point.0).fold(1.0_f64, f64::max);
    let top = points().map(|point| point.1).fold(0.0_f64, f64::max).max(1e-9) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..right, 0.0..top)?;
    chart.configure_mesh().x_desc("seconds").light_line_style(WHITE.mix(0.0)).draw()?;
    for (index, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}
