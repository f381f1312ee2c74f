//! Printing diagnostics: compiler-style text with the source line and a caret, or JSON.
use codespan_reporting::diagnostic::{Diagnostic as Report, Label, Severity as Level};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config};
use serde::Serialize;
use sluice_config::{Diagnostic, Origin, Severity};
use std::collections::HashMap;
use std::sync::Arc;

/// Byte range of a 1-based line/column span (columns count characters).
fn byte_range(text: &str, o: &Origin) -> std::ops::Range<usize> {
    let offset = |line: u32, col: u32| -> usize {
        let start = text
            .split_inclusive('\n')
            .take(line.saturating_sub(1) as usize)
            .map(str::len)
            .sum::<usize>()
            .min(text.len());
        let line_text = text[start..].split('\n').next().unwrap_or("");
        start
            + line_text
                .char_indices()
                .nth(col.saturating_sub(1) as usize)
                .map(|(i, _)| i)
                .unwrap_or(line_text.len())
    };
    let start = offset(o.line, o.column);
    let mut end = offset(o.end_line, o.end_column);
    // A multi-line node is marked on its first line only.
    if o.end_line != o.line || end <= start {
        let line_end = text[start..]
            .find('\n')
            .map(|i| start + i)
            .unwrap_or(text.len());
        end = if end <= start || o.end_line != o.line {
            line_end.max(start + 1).min(text.len().max(start))
        } else {
            end
        };
    }
    // Underline the value, not a trailing comment or spaces.
    let mut end = end.max(start);
    if let Some(hash) = text[start..end].find(" #") {
        end = start + hash;
    }
    start..start + text[start..end].trim_end().len().max(1).min(end - start)
}

pub fn text(diags: &[Diagnostic], sources: &HashMap<Arc<str>, Arc<str>>) -> String {
    let mut files = SimpleFiles::new();
    let mut ids = HashMap::new();
    let mut names: Vec<&Arc<str>> = sources.keys().collect();
    names.sort();
    for name in names {
        ids.insert(
            name.clone(),
            files.add(name.to_string(), sources[name].to_string()),
        );
    }
    let config = Config::default();
    let mut out = String::new();
    for d in diags {
        let level = match d.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
            Severity::Info => Level::Note,
        };
        let mut report = Report::new(level)
            .with_code(d.code)
            .with_message(&d.message);
        let mut notes = Vec::new();
        if let Some(o) = &d.origin {
            match ids.get(&o.file) {
                Some(&id) => {
                    let range =
                        byte_range(files.get(id).map(|f| f.source().as_str()).unwrap_or(""), o);
                    let label = d
                        .resource
                        .as_ref()
                        .map(|r| r.to_string())
                        .unwrap_or_default();
                    report =
                        report.with_labels(vec![Label::primary(id, range).with_message(label)]);
                }
                None => notes.push(format!("at {o}")),
            }
        }
        if let Some(h) = &d.help {
            notes.push(format!("help: {h}"));
        }
        report = report.with_notes(notes);
        match term::emit_into_string(&config, &files, &report) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(&format!(
                "{}[{}]: {}\n",
                d.severity.as_str(),
                d.code,
                d.message
            )),
        }
    }
    out
}

#[derive(Serialize)]
struct JsonDiag<'a> {
    severity: &'static str,
    code: &'static str,
    message: &'a str,
    help: Option<&'a str>,
    field: Option<&'a str>,
    resource: Option<JsonResource<'a>>,
    origin: Option<JsonOrigin<'a>>,
}

#[derive(Serialize)]
struct JsonResource<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct JsonOrigin<'a> {
    file: &'a str,
    line: u32,
    column: u32,
}

pub fn json(diags: &[Diagnostic]) -> String {
    let list: Vec<JsonDiag> = diags
        .iter()
        .map(|d| JsonDiag {
            severity: d.severity.as_str(),
            code: d.code,
            message: &d.message,
            help: d.help.as_deref(),
            field: d.field.as_deref(),
            resource: d.resource.as_ref().map(|r| JsonResource {
                kind: &r.kind,
                namespace: &r.namespace,
                name: &r.name,
            }),
            origin: d.origin.as_ref().map(|o| JsonOrigin {
                file: &o.file,
                line: o.line,
                column: o.column,
            }),
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into())
}

pub fn summary(diags: &[Diagnostic]) -> String {
    let count = |s| diags.iter().filter(|d| d.severity == s).count();
    format!(
        "{} error(s), {} warning(s), {} info",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    )
}
