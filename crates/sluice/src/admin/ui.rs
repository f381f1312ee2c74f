//! `/ui`: the routing of the snapshot now serving, drawn server-side as one SVG in layered
//! columns (listeners → TLS servers → virtual hosts → routes → clusters → endpoints) from the
//! same graph `sluice graph` prints, with each route's share of a cluster on its edge and each
//! cluster's requests so far. No script: the page reloads itself every few seconds.
use crate::graph::{Graph, Layer, Node};
use sluice_compile::Snapshot;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Drawing width: fits a 1400 px window with the page's margins.
const WIDTH: f64 = 1360.0;
/// Room between a column's boxes and the next column, for edges and their labels.
const GUTTER: f64 = 56.0;
const TOP: f64 = 44.0;
const GAP: f64 = 12.0;
const REFRESH_SECONDS: u32 = 5;

/// Escapes text for HTML and SVG, element content and attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Relative widths: names of routes and clusters are the long ones.
fn share(layer: Layer) -> f64 {
    match layer {
        Layer::Listener => 0.8,
        Layer::Server => 1.0,
        Layer::Host => 1.0,
        Layer::Route => 1.1,
        Layer::Cluster => 1.3,
        Layer::Endpoint => 0.9,
    }
}

fn colour(layer: Layer) -> &'static str {
    match layer {
        Layer::Listener => "#3b5bdb",
        Layer::Server => "#7048e8",
        Layer::Host => "#0c8599",
        Layer::Route => "#e8590c",
        Layer::Cluster => "#2b8a3e",
        Layer::Endpoint => "#495057",
    }
}

fn height(layer: Layer) -> f64 {
    if layer == Layer::Cluster {
        58.0
    } else {
        40.0
    }
}

/// Widths of a character, roughly (digits and capitals are the wide ones): bold 12 px titles,
/// 11 px details and labels.
const TITLE_CHAR: f64 = 7.0;
const DETAIL_CHAR: f64 = 6.0;

/// `text` cut to fit `px` pixels at `char_px` a character, with an ellipsis when cut.
fn fit(text: &str, px: f64, char_px: f64) -> String {
    let max = (px / char_px).floor().max(4.0) as usize;
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// A box's place.
#[derive(Clone, Copy)]
struct Place {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Where everything goes.
struct Layout<'a> {
    /// The layers that have nodes, each with its left edge and its boxes' width.
    columns: Vec<(Layer, f64, f64)>,
    places: HashMap<&'a str, Place>,
    height: f64,
}

/// Columns of the layers that have nodes, and each node's box. Within a column, nodes are
/// ordered by the mean position of what points at them (fewer crossing edges), then as first
/// seen; columns are centred vertically.
fn layout(g: &Graph) -> Layout<'_> {
    let layers: Vec<Layer> = Layer::ALL
        .into_iter()
        .filter(|l| g.nodes.iter().any(|n| n.layer == *l))
        .collect();
    let total: f64 = layers.iter().map(|l| share(*l)).sum();
    let mut columns = Vec::new();
    let mut x = 0.0;
    for l in &layers {
        let w = WIDTH * share(*l) / total;
        columns.push((*l, x, w - GUTTER));
        x += w;
    }
    let mut rank: HashMap<&str, f64> = HashMap::new();
    let mut ordered: Vec<Vec<&Node>> = Vec::new();
    for l in &layers {
        let mut nodes: Vec<(f64, usize, &Node)> = g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.layer == *l)
            .map(|(seen, n)| {
                let from: Vec<f64> = g
                    .edges
                    .iter()
                    .filter(|e| e.to == n.id)
                    .filter_map(|e| rank.get(e.from.as_str()).copied())
                    .collect();
                let mean = if from.is_empty() {
                    f64::MAX
                } else {
                    from.iter().sum::<f64>() / from.len() as f64
                };
                (mean, seen, n)
            })
            .collect();
        nodes.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (i, (_, _, n)) in nodes.iter().enumerate() {
            rank.insert(&n.id, i as f64);
        }
        ordered.push(nodes.into_iter().map(|(_, _, n)| n).collect());
    }
    let column_height =
        |nodes: &[&Node]| -> f64 { nodes.iter().map(|n| height(n.layer) + GAP).sum::<f64>() - GAP };
    let tallest = ordered.iter().map(|c| column_height(c)).fold(0.0, f64::max);
    let mut places = HashMap::new();
    for ((_, x, w), nodes) in columns.iter().zip(&ordered) {
        let mut y = TOP + (tallest - column_height(nodes)) / 2.0;
        for n in nodes {
            let h = height(n.layer);
            places.insert(n.id.as_str(), Place { x: *x, y, w: *w, h });
            y += h + GAP;
        }
    }
    Layout {
        columns,
        places,
        height: TOP + tallest + 16.0,
    }
}

/// The page: a summary line and the drawing.
pub fn page(snapshot: &Snapshot, counts: &HashMap<String, u64>) -> String {
    let g = crate::graph::build(snapshot);
    let requests: u64 = snapshot.clusters.keys().filter_map(|c| counts.get(c)).sum();
    let count = |layer: Layer| g.nodes.iter().filter(|n| n.layer == layer).count();
    let mut out = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>sluice routing</title><style>{STYLE}</style></head><body>\n\
         <h1>sluice routing</h1>\n<p class=\"summary\">{} listeners · {} virtual hosts · {} routes · \
         {} clusters · {} endpoints · <b>{requests}</b> requests forwarded · refreshed every \
         {REFRESH_SECONDS} s · <a href=\"/\">admin</a></p>\n",
        count(Layer::Listener),
        count(Layer::Host),
        count(Layer::Route),
        count(Layer::Cluster),
        count(Layer::Endpoint),
    );
    if g.nodes.is_empty() {
        out.push_str("<p>No configuration is serving yet.</p></body></html>\n");
        return out;
    }
    out.push_str(&svg(&g, counts));
    out.push_str("</body></html>\n");
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:16px 20px;color:#212529;background:#f8f9fa}h1{font-size:20px;margin:0 0 4px}\
.summary{margin:0 0 12px;color:#495057;font-size:14px}svg{background:#fff;\
border:1px solid #dee2e6;border-radius:6px}";

fn svg(g: &Graph, counts: &HashMap<String, u64>) -> String {
    let Layout {
        columns,
        places,
        height,
    } = layout(g);
    let most = counts.values().copied().max().unwrap_or(0).max(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"-8 0 {} {height:.0}\" font-family=\"system-ui,sans-serif\" font-size=\"12\">",
        WIDTH + 8.0
    );
    for (layer, x, _) in &columns {
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"24\" font-size=\"13\" font-weight=\"600\" fill=\"{}\">{}</text>",
            colour(*layer),
            layer.heading()
        );
    }
    // Edges first, so boxes cover their ends; weights last, so nothing covers them.
    let mut labels = String::new();
    let clusters: std::collections::HashSet<&str> = g
        .nodes
        .iter()
        .filter(|n| n.layer == Layer::Cluster)
        .map(|n| n.id.as_str())
        .collect();
    for e in &g.edges {
        let (Some(a), Some(b)) = (places.get(e.from.as_str()), places.get(e.to.as_str())) else {
            continue;
        };
        let (x1, y1, x2, y2) = (a.x + a.w, a.y + a.h / 2.0, b.x, b.y + b.h / 2.0);
        let bend = (x2 - x1) / 2.0;
        let _ = writeln!(
            out,
            "<path d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}\" \
             fill=\"none\" stroke=\"#adb5bd\" stroke-width=\"1.4\"/>",
            x1 + bend,
            x2 - bend
        );
        // Weights label the edges into clusters; SNI names are in the routes' boxes.
        if e.label.is_empty() || !clusters.contains(e.to.as_str()) {
            continue;
        }
        let label = fit(&e.label, 2.0 * GUTTER, DETAIL_CHAR);
        let w = DETAIL_CHAR * label.chars().count() as f64 + 8.0;
        let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        let _ = writeln!(
            labels,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"16\" rx=\"3\" \
             fill=\"#fff\" stroke=\"#ced4da\"/><text class=\"weight\" x=\"{mx:.1}\" \
             y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#343a40\">{}</text>",
            mx - w / 2.0,
            my - 8.0,
            my + 4.0,
            escape(&label)
        );
    }
    for n in &g.nodes {
        let Some(p) = places.get(n.id.as_str()) else {
            continue;
        };
        node(&mut out, n, *p, counts, most);
    }
    out.push_str(&labels);
    out.push_str("</svg>\n");
    out
}

fn node(out: &mut String, n: &Node, p: Place, counts: &HashMap<String, u64>, most: u64) {
    let c = colour(n.layer);
    let Place { x, y, w, h } = p;
    let _ = write!(
        out,
        "<g class=\"node {:?}\"><title>{}</title>\
         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h}\" rx=\"5\" fill=\"#fff\" \
         stroke=\"{c}\" stroke-opacity=\"0.5\"/>\
         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"4\" height=\"{h}\" rx=\"2\" fill=\"{c}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"600\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#6c757d\">{}</text>",
        n.layer,
        escape(&n.label),
        x + 10.0,
        // A box without a detail line has its title in the middle.
        if n.detail.is_empty() {
            y + h / 2.0 + 4.0
        } else {
            y + 16.0
        },
        escape(&fit(&n.title, w - 14.0, TITLE_CHAR)),
        x + 10.0,
        y + 32.0,
        escape(&fit(&n.detail, w - 14.0, DETAIL_CHAR)),
    );
    if let Some(cluster) = &n.cluster {
        let requests = counts.get(cluster).copied().unwrap_or(0);
        let bar = (w - 14.0) * requests as f64 / most as f64;
        let _ = write!(
            out,
            "<text class=\"requests\" data-cluster=\"{}\" data-requests=\"{requests}\" \
             x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{c}\" font-weight=\"600\">\
             {requests} requests</text>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"3\" fill=\"{c}\"/>",
            escape(cluster),
            x + 10.0,
            y + 48.0,
            x + 10.0,
            y + h - 5.0,
        );
    }
    out.push_str("</g>\n");
}

/// The admin port's index: every page with a line on what it shows.
pub fn index(pages: &[(&str, &str)]) -> String {
    let mut out = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>sluice admin</title>\
         <style>{STYLE}</style></head><body>\n<h1>sluice admin</h1>\n<ul>\n"
    );
    for (path, what) in pages {
        let _ = writeln!(
            out,
            "<li><a href=\"{0}\"><code>{0}</code></a> — {1}</li>",
            escape(path),
            escape(what)
        );
    }
    out.push_str("</ul></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_cut_to_fit() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(fit("short", 200.0, TITLE_CHAR), "short");
        let cut = fit(
            "outbound|8000|stable|demo.default.svc.cluster.local",
            100.0,
            10.0,
        );
        assert!(cut.ends_with('…') && cut.chars().count() == 10, "{cut}");
    }
}
