//! The latency plot: a percentile spectrum as HdrHistogram's plotter draws it, latency (ms)
//! against percentile on a log scale of 1/(1 − percentile), so the tail gets the room.

use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Renders the spectrum of each named histogram (microseconds) as an SVG document.
pub fn percentile_spectrum(
    title: &str,
    series: &[(&str, &Histogram<u64>)],
) -> anyhow::Result<String> {
    let lines: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(name, h)| {
            let points = h
                .iter_quantiles(5)
                .filter(|v| v.quantile_iterated_to() < 1.0)
                .map(|v| {
                    let x = 1.0 / (1.0 - v.quantile_iterated_to());
                    (x, v.value_iterated_to() as f64 / 1000.0)
                })
                .collect();
            (*name, points)
        })
        .collect();
    let x_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(10.0f64, f64::max);
    let x_max = 10f64.powf(x_max.log10().ceil());
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.001f64, f64::max)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{title}: latency by percentile"),
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((1f64..x_max).log_scale(), 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| percentile_label(*x))
            .draw()?;
        let colors = [BLUE, RED, GREEN, MAGENTA];
        for (i, (name, points)) in lines.into_iter().enumerate() {
            let color = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// 1 → "0%", 10 → "90%", 100 → "99%", 1000 → "99.9%", …
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let decimals = (x.log10().round() as usize).saturating_sub(2);
    format!("{p:.decimals$}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_labelled_as_people_read_them() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100000.0), "99.999%");
    }

    #[test]
    fn the_plot_is_an_svg_with_both_series() {
        let mut a = crate::collect::latency_histogram();
        let mut b = crate::collect::latency_histogram();
        for v in 1..10_000u64 {
            a.record(v).unwrap();
            b.record(v * 3).unwrap();
        }
        let svg = percentile_spectrum("t", &[("publish", &a), ("end-to-end", &b)]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("publish") && svg.contains("end-to-end"));
        assert!(svg.contains("99.9%"));
    }
}
