//! The interactive explorer: dive's panes drawn with ratatui over
//! crossterm, its state and key handling in [`model`] (testable without a
//! terminal; the CLI's tests drive the real thing under tmux).
//!
//! Left: the layers (size and command), the selected layer's details
//! (command, digest, diff_id) and the image's details (size, wasted space,
//! efficiency, the inefficient files). Right: the file tree at the
//! selected layer with added/removed/modified marks. The bottom line
//! lists the keys.

pub mod model;

use std::io;
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::{Frame, Terminal};

use crate::analysis::Analysis;
use crate::error::{AnalyzeError, Result};
use crate::humanize::bytes;
use model::{Change, Key, Model, Pane};

/// Runs the explorer on the terminal until the user quits.
pub fn run(analysis: &Analysis) -> Result<()> {
    let io_err = AnalyzeError::layer;
    enable_raw_mode().map_err(io_err)?;
    let mut stdout = io::stdout();
    execute!(stdout, EnterAlternateScreen).map_err(io_err)?;
    let result = (|| {
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout())).map_err(io_err)?;
        let mut m = Model::new(analysis);
        loop {
            terminal.draw(|f| draw(f, &mut m)).map_err(io_err)?;
            if !event::poll(Duration::from_millis(500)).map_err(io_err)? {
                continue;
            }
            if let Event::Key(k) = event::read().map_err(io_err)? {
                if k.kind == KeyEventKind::Release {
                    continue;
                }
                let key = match (k.code, k.modifiers.contains(KeyModifiers::CONTROL)) {
                    (KeyCode::Char(c), true) => Key::Ctrl(c.to_ascii_lowercase()),
                    (KeyCode::Char(' '), false) => Key::Space,
                    (KeyCode::Char(c), false) => Key::Char(c),
                    (KeyCode::Tab, _) => Key::Tab,
                    (KeyCode::Up, _) => Key::Up,
                    (KeyCode::Down, _) => Key::Down,
                    (KeyCode::PageUp, _) => Key::PageUp,
                    (KeyCode::PageDown, _) => Key::PageDown,
                    (KeyCode::Enter, _) => Key::Enter,
                    (KeyCode::Esc, _) => Key::Esc,
                    (KeyCode::Backspace, _) => Key::Backspace,
                    _ => continue,
                };
                if !m.key(key) {
                    return Ok(());
                }
            }
        }
    })();
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen);
    result
}

fn block(title: String, active: bool) -> Block<'static> {
    let style = if active {
        Style::default().add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, style))
}

fn selected(on: bool) -> Style {
    if on {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default()
    }
}

/// A window of `len` rows of `height` that keeps `at` visible.
fn window(at: usize, len: usize, height: usize) -> std::ops::Range<usize> {
    let height = height.max(1);
    let start = at
        .saturating_sub(height - 1)
        .min(len.saturating_sub(height));
    start..(start + height).min(len)
}

fn draw(f: &mut Frame<'_>, m: &mut Model<'_>) {
    let a = m.analysis;
    let outer = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(5), Constraint::Length(1)])
        .split(f.area());
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(outer[0]);
    let left = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Percentage(35),
            Constraint::Percentage(25),
            Constraint::Percentage(40),
        ])
        .split(cols[0]);

    // Layers.
    let inner = left[0].height.saturating_sub(3) as usize;
    let mut lines = vec![Line::from(format!("{:<5}{:>9}  Command", "Cmp", "Size"))];
    for i in window(m.layer, a.layers.len(), inner) {
        let l = &a.layers[i];
        let cmd: String = l.command().split_whitespace().collect::<Vec<_>>().join(" ");
        lines.push(Line::styled(
            format!("{:<5}{:>9}  {cmd}", "", bytes(l.size)),
            selected(i == m.layer),
        ));
    }
    f.render_widget(
        Paragraph::new(lines).block(block("│ Layers │".into(), m.pane == Pane::Layers)),
        left[0],
    );

    // Layer details.
    let layer = &a.layers[m.layer.min(a.layers.len().saturating_sub(1))];
    let details = vec![
        Line::from(vec![
            Span::styled("Tags:   ", bold()),
            Span::raw("(unavailable)"),
        ]),
        Line::from(vec![
            Span::styled("Id:     ", bold()),
            Span::raw(layer.id()),
        ]),
        Line::from(vec![
            Span::styled("Digest: ", bold()),
            Span::raw(
                layer
                    .digest
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
        ]),
        Line::from(vec![
            Span::styled("DiffID: ", bold()),
            Span::raw(layer.diff_id.clone().unwrap_or_default()),
        ]),
        Line::styled("Command:", bold()),
        Line::from(layer.created_by.clone()),
    ];
    f.render_widget(
        Paragraph::new(details)
            .wrap(Wrap { trim: false })
            .block(block("│ Layer Details │".into(), false)),
        left[1],
    );

    // Image details.
    let mut img = vec![
        Line::from(vec![
            Span::styled("Image name: ", bold()),
            Span::raw(a.name.clone()),
        ]),
        Line::from(vec![
            Span::styled("Total Image size: ", bold()),
            Span::raw(bytes(a.size_bytes)),
        ]),
        Line::from(vec![
            Span::styled("Potential wasted space: ", bold()),
            Span::raw(bytes(a.wasted_bytes)),
        ]),
        Line::from(vec![
            Span::styled("Image efficiency score: ", bold()),
            Span::raw(format!("{:.0} %", a.efficiency.score * 100.0)),
        ]),
        Line::raw(""),
        Line::styled(format!("{:<6}{:>12}  Path", "Count", "Total Space"), bold()),
    ];
    for p in &a.efficiency.inefficient {
        img.push(Line::from(format!(
            "{:<6}{:>12}  {}",
            p.layers.len(),
            bytes(u64::try_from(p.cumulative).unwrap_or(0)),
            p.path
        )));
    }
    f.render_widget(
        Paragraph::new(img).block(block("│ Image Details │".into(), false)),
        left[2],
    );

    // File tree.
    let rows = m.rows();
    let height = cols[1].height.saturating_sub(3) as usize;
    m.page = height.max(1);
    if m.file_row >= rows.len() {
        m.file_row = rows.len().saturating_sub(1);
    }
    let title = if m.aggregated {
        "│ Aggregated Layer Contents │"
    } else {
        "│ Current Layer Contents │"
    };
    let mut tree = vec![Line::styled(
        format!(
            "{:<11} {:>8}:{:<8} {:>8}  Filetree",
            "Permission", "UID", "GID", "Size"
        ),
        bold(),
    )];
    for i in window(m.file_row, rows.len(), height) {
        let r = &rows[i];
        let color = match r.change {
            Change::Added => Color::Green,
            Change::Removed => Color::Red,
            Change::Modified => Color::Yellow,
            Change::Unmodified => Color::Reset,
        };
        let fold = match (r.is_dir, r.collapsed) {
            (true, true) => "⊕ ",
            (true, false) => "⊖ ",
            _ => "",
        };
        let text = format!(
            "{}{:<10} {:>8}:{:<8} {:>8}  {}{}{}",
            r.change.mark(),
            mode_string(r.mode, r.is_dir),
            r.uid,
            r.gid,
            bytes(r.size),
            "  ".repeat(r.depth),
            fold,
            r.name
        );
        let style = Style::default().fg(color);
        let style = if m.pane == Pane::Files && i == m.file_row {
            style.add_modifier(Modifier::REVERSED)
        } else {
            style
        };
        tree.push(Line::styled(text, style));
    }
    let tree_area = if m.filtering || !m.filter.is_empty() {
        let parts = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Min(3), Constraint::Length(3)])
            .split(cols[1]);
        let cursor = if m.filtering { "█" } else { "" };
        f.render_widget(
            Paragraph::new(format!("Path Filter: {}{cursor}", m.filter))
                .block(block("│ Filter │".into(), m.filtering)),
            parts[1],
        );
        parts[0]
    } else {
        cols[1]
    };
    f.render_widget(
        Paragraph::new(tree).block(block(title.into(), m.pane == Pane::Files)),
        tree_area,
    );
    f.render_widget(Paragraph::new(status(m)), outer[1]);
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn onoff(m: &Model<'_>, c: Change) -> &'static str {
    if m.hidden.contains(&c) {
        "○"
    } else {
        "●"
    }
}

fn status(m: &Model<'_>) -> Line<'static> {
    let view = if m.aggregated {
        "Show layer changes"
    } else {
        "Show aggregated changes"
    };
    Line::from(format!(
        "^C Quit | Tab Switch view | ^F Filter | Space Collapse dir | ^L {view} | ^A {}Added | ^R {}Removed | ^M {}Modified | ^U {}Unmodified",
        onoff(m, Change::Added),
        onoff(m, Change::Removed),
        onoff(m, Change::Modified),
        onoff(m, Change::Unmodified),
    ))
}

/// `drwxr-xr-x` from Go's file mode bits.
fn mode_string(mode: u32, is_dir: bool) -> String {
    let kind = if is_dir {
        'd'
    } else if mode & (1 << 27) != 0 {
        'l'
    } else {
        '-'
    };
    let mut s = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}
