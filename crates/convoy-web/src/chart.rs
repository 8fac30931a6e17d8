//! The downloads-per-day chart: an inline SVG drawn on the server, so it
//! needs no script and shows in screenshots.

use maud::{Markup, html};

/// Days the chart covers.
pub(crate) const DAYS: u32 = 90;

const BAR: u32 = 6;
const HEIGHT: u32 = 80;

/// `counts` are `(day since the epoch, downloads)`; `today` is the last
/// day shown.
pub(crate) fn downloads(counts: &[(i64, u64)], today: i64) -> Markup {
    let first = today - i64::from(DAYS) + 1;
    let mut per_day = vec![0u64; DAYS as usize];
    for &(day, n) in counts {
        if let Ok(i) = usize::try_from(day - first)
            && let Some(slot) = per_day.get_mut(i)
        {
            *slot += n;
        }
    }
    let max = per_day.iter().copied().max().unwrap_or(0).max(1);
    let total: u64 = per_day.iter().sum();
    let width = DAYS * BAR;
    let label = format!("Downloads per day over the last {DAYS} days: {total} in total");
    html! {
        svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(label)
            viewBox=(format!("0 0 {width} {}", HEIGHT + 14)) preserveAspectRatio="none" {
            title { (label) }
            line x1="0" y1=(HEIGHT) x2=(width) y2=(HEIGHT) class="axis" {}
            @for (i, n) in per_day.iter().enumerate() {
                @if *n > 0 {
                    @let h = ((*n as f64 / max as f64) * f64::from(HEIGHT - 4)).ceil().max(1.0);
                    rect x=(i as u32 * BAR + 1) y=(f64::from(HEIGHT) - h) width=(BAR - 2) height=(h) {
                        title { (day_label(first + i as i64)) ": " (n) }
                    }
                }
            }
            text x="0" y=(HEIGHT + 12) { (day_label(first)) }
            text x=(width) y=(HEIGHT + 12) text-anchor="end" { (day_label(today)) }
            text x=(width) y="10" text-anchor="end" { "max " (max) }
        }
    }
}

/// `YYYY-MM-DD` of a day since the epoch.
pub(crate) fn day_label(day: i64) -> String {
    let stamp = convoy_protocol::index::format_timestamp(day * 86_400);
    stamp.get(..10).unwrap_or(&stamp).to_owned()
}
