//! `evl report`: writes the gate-board page of a packet revision (src/page.rs,
//! docs/REPORT.md) as DIR/index.html.

use std::path::PathBuf;

use clap::Args;

use super::{Global, open};
use crate::entry::Payload;
use crate::error::{Error, exit};
use crate::page::{self, AsOfSource};
use crate::timestamp::Timestamp;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The packet revision (entry id or prefix).
    pub packet: String,
    /// The directory to write index.html into; created if missing.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output: PathBuf,
    /// Evaluate as of this time (default: the as-of of the revision's latest recorded
    /// disposition; the page never reads the clock).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<Timestamp>,
    /// Print what was written as JSON (`"schema": "evl.report/v1"`).
    #[arg(long)]
    pub json: bool,
}

/// How much of an existing index.html is read to find evl's generator mark.
const HEAD_BYTES: usize = 4096;

pub fn report(g: &Global, a: ReportArgs) -> Result<i32, Error> {
    let ledger = open(g)?;
    let (_, e) = ledger.resolve_entry(&a.packet)?;
    let id = e.body.id();
    if !matches!(e.body.payload, Payload::Packet(_)) {
        return Err(Error::Invalid(format!(
            "{} is a {} entry, not a packet revision",
            a.packet,
            e.body.payload.kind()
        )));
    }
    let (as_of, source) = match a.as_of {
        Some(t) => (t, AsOfSource::Given),
        None => match page::latest_recorded_as_of(ledger, &id)? {
            Some((d, t)) => (t, AsOfSource::LatestDisposition(d)),
            None => {
                return Err(Error::Invalid(format!(
                    "packet {} has no recorded disposition to take the as-of time from; pass --as-of TIME",
                    id.short()
                )));
            }
        },
    };
    let built = page::build(ledger, &id, as_of, source)?;
    let html = page::render(&built);

    let dir = &a.output;
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{} exists and is not a directory",
            dir.display()
        )));
    }
    let target = dir.join("index.html");
    if let Ok(meta) = std::fs::symlink_metadata(&target) {
        let ours = meta.is_file()
            && std::fs::read(&target).is_ok_and(|b| {
                let head = &b[..b.len().min(HEAD_BYTES)];
                let mark = format!("<meta name=\"generator\" content=\"{}\">", page::GENERATOR);
                head.windows(mark.len()).any(|w| w == mark.as_bytes())
            });
        if !ours {
            return Err(Error::Invalid(format!(
                "{} exists and is not a page evl report wrote; not overwritten (remove it or pick another -o)",
                target.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    // Written beside and renamed over, so a reader never sees half a page.
    let tmp = dir.join(".index.html.evl-tmp");
    std::fs::write(&tmp, html.as_bytes()).map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, &target).map_err(Error::io(&target))?;
    let d = &built.verdict;
    if a.json {
        return super::print_json_as(
            "evl.report/v1",
            &serde_json::json!({
                "page": target.display().to_string(),
                "bytes": html.len(),
                "packet": id.to_hex(),
                "verdict": d.to_string(),
                "as_of": as_of.to_string(),
            }),
        );
    }
    println!(
        "wrote {} ({} bytes): packet {}, {d} as of {as_of}",
        target.display(),
        html.len(),
        id.short()
    );
    Ok(exit::OK)
}
