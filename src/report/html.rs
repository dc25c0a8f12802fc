//! The waste report for one payer-month as one self-contained HTML file: inline SVG
//! charts and tables, no scripts, no fonts or styles fetched from anywhere, so it opens
//! offline and can be mailed as an attachment.

use std::fmt::Write;

use crate::warehouse::WasteBreakdown;

/// How many applications get their own line in the hourly chart; the rest are summed.
const CHART_APPLICATIONS: usize = 6;
/// Colours for the application lines and bars (colour-blind safe, Okabe–Ito).
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#999999",
];

/// Escapes text for HTML content and attribute values: ARNs, tags and application names
/// come from the CUR, i.e. from outside.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn money(amount: f64) -> String {
    super::summary::dollars(amount)
}

/// Hourly waste per application over the month, as SVG lines.
fn hourly_chart(b: &WasteBreakdown) -> String {
    let (width, height, left, bottom) = (960.0, 300.0, 60.0, 30.0);
    let hours = b.hours.max(1) as f64;
    let series = b.hourly_by_application(CHART_APPLICATIONS);
    let peak = series
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(0.01);
    let x = |h: usize| left + (width - left - 10.0) * h as f64 / hours;
    let y = |v: f64| (height - bottom) - (height - bottom - 10.0) * v / peak;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Hourly waste per application\">"
    );
    for step in 0..=4 {
        let value = peak * f64::from(step) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            width - 10.0,
            left - 6.0,
            y(value) + 4.0,
            money(value),
            y0 = y(value)
        );
    }
    for day in (0..b.hours).step_by(24 * 7) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" class=\"axis\">day {}</text>",
            x(day),
            height - 8.0,
            day / 24 + 1
        );
    }
    for (i, (_, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(h, v)| format!("{:.1},{:.1}", x(h), y(*v)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.2\" points=\"{}\"/>",
            PALETTE[i % PALETTE.len()],
            points.join(" ")
        );
    }
    svg.push_str("</svg><p class=\"legend\">");
    for (i, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            svg,
            "<span><i style=\"background:{}\"></i>{}</span>",
            PALETTE[i % PALETTE.len()],
            escape(name)
        );
    }
    svg.push_str("</p>");
    svg
}

/// Horizontal bars, one per (label, value), scaled to the largest.
fn bars(rows: &[(String, f64)], colour: &str) -> String {
    let peak = rows
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max)
        .max(0.01);
    let row_height = 26.0;
    let height = row_height * rows.len().max(1) as f64 + 10.0;
    let mut svg = format!("<svg viewBox=\"0 0 960 {height}\" role=\"img\">");
    for (i, (label, value)) in rows.iter().enumerate() {
        let top = 5.0 + row_height * i as f64;
        let length = 560.0 * value / peak;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" class=\"label\">{}</text><rect x=\"330\" y=\"{top:.1}\" width=\"{length:.1}\" height=\"{}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
            top + 16.0,
            escape(&shorten(label, 52)),
            row_height - 8.0,
            336.0 + length,
            top + 16.0,
            money(*value)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let tail: String = text
            .chars()
            .rev()
            .take(max - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

/// Renders the report.
pub fn render_html(b: &WasteBreakdown) -> String {
    let title = format!("Commitment waste — payer {} — {}", b.payer, b.period);
    let commitments: Vec<(String, f64)> = b
        .top_commitments
        .iter()
        .map(|c| {
            (
                format!("{} {}", c.kind.to_uppercase(), c.arn),
                c.unused_cost,
            )
        })
        .collect();
    let split = vec![
        ("Reserved Instances".to_owned(), b.ri_unused_cost),
        ("Savings Plans".to_owned(), b.sp_unused_cost),
    ];
    let mut table = String::new();
    for a in &b.applications {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.application),
            money(a.ri_unused_cost),
            money(a.sp_unused_cost),
            money(a.ri_unused_cost + a.sp_unused_cost)
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
         body{{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}}\
         h1{{font-size:1.4em}}h2{{font-size:1.1em;margin-top:2em}}svg{{width:100%;height:auto}}\
         .grid{{stroke:#ddd}}.axis{{font-size:11px;fill:#555}}.label{{font-size:12px;fill:#222}}\
         .legend span{{margin-right:1.2em;white-space:nowrap}}.legend i{{display:inline-block;width:10px;height:10px;margin-right:4px}}\
         table{{border-collapse:collapse}}td,th{{padding:3px 12px;text-align:right;border-bottom:1px solid #eee}}\
         td:first-child,th:first-child{{text-align:left}}.total{{font-size:1.2em}}</style></head><body>\
         <h1>{title}</h1><p class=\"total\">Unused commitments cost <b>{}</b>: Reserved Instances {}, Savings Plans {}.</p>\
         <h2>Hourly waste per application</h2>{}\
         <h2>Top commitments by waste</h2>{}\
         <h2>Reserved Instances vs Savings Plans</h2>{}\
         <h2>Waste per application</h2><table><tr><th>application</th><th>RI</th><th>SP</th><th>total</th></tr>{table}</table>\
         <p class=\"axis\">Generated by curflow {} from ri_wastage_hourly and sp_wastage_hourly.</p></body></html>\n",
        money(b.ri_unused_cost + b.sp_unused_cost),
        money(b.ri_unused_cost),
        money(b.sp_unused_cost),
        hourly_chart(b),
        bars(&commitments, PALETTE[0]),
        bars(&split, PALETTE[1]),
        env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped() {
        assert_eq!(
            escape("<script>'a'&\"b\""),
            "&lt;script&gt;&#39;a&#39;&amp;&quot;b&quot;"
        );
        assert_eq!(shorten("abcdef", 4), "…def");
    }
}
