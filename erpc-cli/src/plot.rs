//! A small SVG chart for `erpc bench --plot`: throughput and p99 latency against concurrency.

/// One measurement to draw.
pub struct Point {
    /// Concurrent workers.
    pub concurrency: usize,
    /// Calls per second.
    pub throughput: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
}

const W: f64 = 720.0;
const H: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 80.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// The chart as an SVG document: x is the measurement index (labelled with its concurrency),
/// throughput on the left axis (blue), p99 on the right axis (red).
pub fn svg(points: &[Point]) -> String {
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">erpc bench: throughput and p99 by concurrency</text>\n",
        W / 2.0
    );
    if points.is_empty() {
        out.push_str("</svg>\n");
        return out;
    }
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let max_tp = points.iter().map(|p| p.throughput).fold(1.0, f64::max) * 1.1;
    let max_p99 = points.iter().map(|p| p.p99_us).fold(1.0, f64::max) * 1.1;
    let x = |i: usize| {
        LEFT + if points.len() == 1 {
            pw / 2.0
        } else {
            pw * i as f64 / (points.len() - 1) as f64
        }
    };
    let y = |v: f64, max: f64| TOP + ph - ph * v / max;
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#1f77b4\"/>\n\
         <line x1=\"{r}\" y1=\"{TOP}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#d62728\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">concurrency</text>\n",
        W / 2.0,
        H - 15.0,
        b = TOP + ph,
        r = LEFT + pw,
    ));
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let yy = TOP + ph - ph * f;
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{yy}\" text-anchor=\"end\" fill=\"#1f77b4\">{:.0}k/s</text>\n\
             <text x=\"{}\" y=\"{yy}\" fill=\"#d62728\">{:.1}ms</text>\n",
            LEFT - 6.0,
            max_tp * f / 1000.0,
            LEFT + pw + 6.0,
            max_p99 * f / 1000.0
        ));
    }
    for (i, p) in points.iter().enumerate() {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            TOP + ph + 18.0,
            p.concurrency
        ));
    }
    for (values, max, color) in [
        (
            points.iter().map(|p| p.throughput).collect::<Vec<_>>(),
            max_tp,
            "#1f77b4",
        ),
        (points.iter().map(|p| p.p99_us).collect::<Vec<_>>(), max_p99, "#d62728"),
    ] {
        let path: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v, max)))
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        ));
        for (i, &v) in values.iter().enumerate() {
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                x(i),
                y(v, max)
            ));
        }
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" fill=\"#1f77b4\">throughput (calls/s)</text>\n<text x=\"{}\" y=\"{}\" fill=\"#d62728\" text-anchor=\"end\">p99 latency</text>\n</svg>\n",
        LEFT, TOP - 8.0, LEFT + pw, TOP - 8.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_marker_per_point_and_series() {
        let points = [
            Point {
                concurrency: 100,
                throughput: 150_000.0,
                p99_us: 1500.0,
            },
            Point {
                concurrency: 1000,
                throughput: 170_000.0,
                p99_us: 9000.0,
            },
        ];
        let svg = svg(&points);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">1000<"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
