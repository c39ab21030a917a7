//! `kiln logs`: the json-file log read back, with `--since`, `--until`,
//! `--tail`, `-t`, and `-f` following until the container stops.

use std::io::{BufReader, Seek, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::anyhow;
use kiln_container::logs::{self, Entry, Filter, Stream};
use kiln_container::Status;
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    until: Option<String>,
    /// Number of lines to show from the end of the logs ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// The container: name, ID or ID prefix
    container: String,
}

fn show(e: &Entry, timestamps: bool) -> std::io::Result<()> {
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    match e.stream {
        Stream::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.flush()
        }
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    }
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let id = engine.get(&args.container)?.config.id;
    let now = SystemTime::now();
    let time = |s: &Option<String>| {
        s.as_deref()
            .map(|v| logs::parse_time(v, now).map_err(|e| anyhow!(e)))
            .transpose()
    };
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow!("invalid value {n:?} for --tail: a number or \"all\""))?,
        ),
    };
    let filter = Filter {
        since: time(&args.since)?,
        until: time(&args.until)?,
        tail,
    };
    let path = engine.containers().log_path(&id);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let mut offset = 0;
    if let Some(f) = file.as_mut() {
        for e in logs::read(BufReader::new(&mut *f), &filter)? {
            show(&e, args.timestamps)?;
        }
        offset = f.stream_position()?;
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Follow: new records as they are written, until the container is no
    // longer running and everything written was shown.
    let follow = Filter {
        tail: None,
        ..filter
    };
    let mut partial = Vec::new();
    loop {
        let running = matches!(
            engine.get(&id).map(|c| c.state.status),
            Ok(Status::Running | Status::Restarting)
        );
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
        }
        if let Some(f) = file.as_mut() {
            f.seek(std::io::SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            std::io::Read::read_to_end(f, &mut buf)?;
            offset += buf.len() as u64;
            partial.extend_from_slice(&buf);
            if let Some(end) = partial.iter().rposition(|b| *b == b'\n') {
                let complete: Vec<u8> = partial.drain(..=end).collect();
                for e in logs::read(&complete[..], &follow)? {
                    show(&e, args.timestamps)?;
                }
            }
        }
        if !running {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
