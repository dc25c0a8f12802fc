//! The waste report for one payer-month as one self-contained HTML file: inline SVG
//! charts and tables, no scripts, no fonts or styles fetched from anywhere, so it opens
//! offline and can be mailed as an attachment.

use std::fmt::Write;

use crate::warehouse::WasteBreakdown;

/// How many applications get their own colour in the daily chart; the rest are summed.
const CHART_APPLICATIONS: usize = 6;
/// The longest bar label, in characters: 12px text this long ends before the bars start.
const LABEL_CHARS: usize = 46;
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

/// The smallest round amount (1, 2, 2.5 or 5 times a power of ten, at least a cent) not
/// below `at_least`: gridlines at $50 steps read at a glance, at $37.90 steps they do not.
fn tick_step(at_least: f64) -> f64 {
    let at_least = at_least.max(0.01);
    let power = 10_f64.powf(at_least.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= at_least * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// Waste per application and day over the month, as stacked SVG bars: a month of hourly
/// lines is too dense to read, a day per bar shows when and for whom commitments idled.
fn daily_chart(b: &WasteBreakdown) -> String {
    let (width, height, left, bottom) = (960.0, 300.0, 70.0, 30.0);
    let series = b.hourly_by_application(CHART_APPLICATIONS);
    let days = b.hours.div_ceil(24).max(1);
    let daily: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, hourly)| {
            let mut per_day = vec![0.0; days];
            for (hour, value) in hourly.iter().enumerate() {
                per_day[hour / 24] += value;
            }
            per_day
        })
        .collect();
    let peak = (0..days)
        .map(|d| daily.iter().map(|values| values[d]).sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(0.01);
    let slot = (width - left - 10.0) / days as f64;
    let step = tick_step(peak / 4.0);
    let ticks = (peak / step).ceil().max(1.0);
    let top = step * ticks;
    let y = |v: f64| (height - bottom) - (height - bottom - 10.0) * v / top;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Daily waste per application\">"
    );
    for tick in 0..=ticks as u32 {
        let value = step * f64::from(tick);
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
    for day in 0..days {
        let x = left + slot * day as f64;
        let mut base = 0.0;
        for (i, values) in daily.iter().enumerate() {
            let value = values[day];
            if value <= 0.0 {
                continue;
            }
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>day {}: {} {}</title></rect>",
                x + slot * 0.1,
                y(base + value),
                slot * 0.8,
                y(base) - y(base + value),
                PALETTE[i % PALETTE.len()],
                day + 1,
                escape(&series[i].0),
                money(value)
            );
            base += value;
        }
        if day == 0 || (day + 1) % 5 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                x + slot / 2.0,
                height - 10.0,
                day + 1
            );
        }
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
            "<text x=\"0\" y=\"{:.1}\" class=\"label\"><title>{}</title>{}</text><rect x=\"330\" y=\"{top:.1}\" width=\"{length:.1}\" height=\"{}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
            top + 16.0,
            escape(label),
            escape(&shorten(label, LABEL_CHARS)),
            row_height - 8.0,
            336.0 + length,
            top + 16.0,
            money(*value)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `text` cut to at most `max` characters by replacing its middle with `…`: an ARN's
/// head (service, region, account) and tail (the commitment's id) both matter.
fn shorten(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_owned();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
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
         <h2>Daily waste per application</h2>{}\
         <h2>Top commitments by waste</h2>{}\
         <h2>Reserved Instances vs Savings Plans</h2>{}\
         <h2>Waste per application</h2><table><tr><th>application</th><th>RI</th><th>SP</th><th>total</th></tr>{table}</table>\
         <p class=\"axis\">Generated by curflow {} from ri_wastage_hourly and sp_wastage_hourly.</p></body></html>\n",
        money(b.ri_unused_cost + b.sp_unused_cost),
        money(b.ri_unused_cost),
        money(b.sp_unused_cost),
        daily_chart(b),
        bars(&commitments, PALETTE[0]),
        bars(&split, PALETTE[1]),
        env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gridlines_fall_on_round_amounts() {
        for (at_least, step) in [
            (37.9, 50.0),
            (75.81 / 4.0, 20.0),
            (151.62 / 4.0, 50.0),
            (2.0, 2.0),
            (0.3, 0.5),
            (1234.0, 2000.0),
            (0.0, 0.01),
        ] {
            assert_eq!(tick_step(at_least), step, "{at_least}");
        }
    }

    #[test]
    fn outside_text_is_escaped() {
        assert_eq!(
            escape("<script>'a'&\"b\""),
            "&lt;script&gt;&#39;a&#39;&amp;&quot;b&quot;"
        );
        assert_eq!(shorten("abcdef", 6), "abcdef");
        assert_eq!(shorten("abcdefgh", 5), "ab…gh");
        let arn = "RI arn:aws:ec2:us-east-1:123456789012:reserved-instances/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let short = shorten(arn, LABEL_CHARS);
        assert_eq!(short.chars().count(), LABEL_CHARS);
        assert!(short.starts_with("RI arn:aws:ec2:us-east") && short.ends_with("c3d2e1f0"));
    }
}
