//! Just enough of a POSIX shell reader for the RUN rules: a script split
//! into simple commands (on `;`, `&&`, `||`, `|`, `&`, newlines and
//! parentheses), each with its words unquoted, its output redirections,
//! and whether the script has a pipe. No expansion, no globbing: the
//! rules look at literal command names and arguments, as hadolint does
//! through ShellCheck's parser.

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// Name first (leading `NAME=value` assignments dropped).
    pub words: Vec<String>,
    /// Targets of `>` and `>>`.
    pub redirects: Vec<String>,
}

impl Command {
    pub fn name(&self) -> &str {
        self.words.first().map_or("", |w| w.as_str())
    }

    /// The basename of the command (`/usr/bin/bash` → `bash`).
    pub fn base_name(&self) -> &str {
        self.name().rsplit('/').next().unwrap_or("")
    }

    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }

    /// hadolint's `cmdHasArgs`: named `name` and any argument among `any`.
    pub fn has_any_arg(&self, name: &str, any: &[&str]) -> bool {
        self.name() == name && self.args().iter().any(|a| any.contains(&a.as_str()))
    }

    /// hadolint's flags: `--name[=v]` gives `name`; `-abc` gives `a`, `b`, `c`.
    pub fn flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.args() {
            if a == "--" {
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                out.push(long.split('=').next().unwrap_or("").to_string());
            } else if let Some(short) = a.strip_prefix('-') {
                out.extend(short.chars().map(String::from));
            }
        }
        out
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags().iter().any(|f| f == flag)
    }

    /// Arguments that are not flags.
    pub fn operands(&self) -> impl Iterator<Item = &str> {
        self.args()
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
    }
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub commands: Vec<Command>,
    /// A `|` (not `||`) joins two commands somewhere.
    pub has_pipe: bool,
}

/// Reads a script.
pub fn parse(script: &str) -> Script {
    let mut out = Script::default();
    let mut cur = Command::default();
    let mut word = String::new();
    let mut in_word = false;
    let mut redirect_next = false;
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    let end_word =
        |word: &mut String, in_word: &mut bool, cur: &mut Command, redirect_next: &mut bool| {
            if !*in_word {
                return;
            }
            let w = std::mem::take(word);
            *in_word = false;
            if *redirect_next {
                cur.redirects.push(w);
                *redirect_next = false;
            } else if cur.words.is_empty() && is_assignment(&w) {
                // `DEBIAN_FRONTEND=noninteractive apt-get …`
            } else {
                cur.words.push(w);
            }
        };
    let end_command = |cur: &mut Command, out: &mut Script| {
        if !cur.words.is_empty() || !cur.redirects.is_empty() {
            out.commands.push(std::mem::take(cur));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                // A line continuation disappears; anything else is literal.
                if chars.get(i + 1) == Some(&'\n') {
                    i += 2;
                    continue;
                }
                if let Some(n) = chars.get(i + 1) {
                    word.push(*n);
                    in_word = true;
                }
                i += 2;
                continue;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() && "\"\\$`".contains(chars[i + 1]) {
                        i += 1;
                    } else if chars[i] == '$' && chars.get(i + 1) == Some(&'(') {
                        // A command substitution inside quotes still runs
                        // commands (and pipes): read it as a script too.
                        let end = closing_paren(&chars, i + 1);
                        let inner: String = chars[i + 2..end.min(chars.len())].iter().collect();
                        let sub = parse(&inner);
                        out.has_pipe |= sub.has_pipe;
                        out.commands.extend(sub.commands);
                        word.extend(&chars[i..(end + 1).min(chars.len())]);
                        i = end + 1;
                        continue;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ' ' | '\t' | '\r' => end_word(&mut word, &mut in_word, &mut cur, &mut redirect_next),
            '>' => {
                end_word(&mut word, &mut in_word, &mut cur, &mut redirect_next);
                // `2>`, `>>`, `>|`, `&>`: a target follows; `>&2` does not.
                if chars.get(i + 1) == Some(&'>') || chars.get(i + 1) == Some(&'|') {
                    i += 1;
                }
                if chars.get(i + 1) == Some(&'&') {
                    i += 1;
                    while i + 1 < chars.len() && chars[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    redirect_next = true;
                }
                // A preceding fd number (`2>`) was taken as a word: drop it.
                if cur
                    .words
                    .last()
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
                    && i > 0
                    && chars
                        .get(i.saturating_sub(1))
                        .is_some_and(|c| c.is_ascii_digit())
                {
                    cur.words.pop();
                }
            }
            '<' => end_word(&mut word, &mut in_word, &mut cur, &mut redirect_next),
            '|' => {
                end_word(&mut word, &mut in_word, &mut cur, &mut redirect_next);
                end_command(&mut cur, &mut out);
                if chars.get(i + 1) == Some(&'|') {
                    i += 1;
                } else {
                    out.has_pipe = true;
                    if chars.get(i + 1) == Some(&'&') {
                        i += 1;
                    }
                }
            }
            ';' | '&' | '\n' | '(' | ')' | '{' | '}' if !(matches!(c, '{' | '}') && in_word) => {
                end_word(&mut word, &mut in_word, &mut cur, &mut redirect_next);
                end_command(&mut cur, &mut out);
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    end_word(&mut word, &mut in_word, &mut cur, &mut redirect_next);
    end_command(&mut cur, &mut out);
    // Keywords that only introduce a command (`then apt-get …`).
    for cmd in &mut out.commands {
        while matches!(
            cmd.name(),
            "then" | "else" | "do" | "if" | "while" | "until" | "!" | "exec" | "sudo" | "time"
        ) {
            cmd.words.remove(0);
        }
    }
    out.commands
        .retain(|c| !c.words.is_empty() || !c.redirects.is_empty());
    out
}

/// The index of the `)` matching the `(` at `open` (or the end).
fn closing_paren(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in chars.iter().enumerate().skip(open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    chars.len()
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((k, _)) => {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands_words_and_pipes() {
        let s = parse("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y 'a b' \\\n c; wget -qO- http://x | tar xz > /tmp/out 2>&1");
        let names: Vec<&str> = s.commands.iter().map(Command::name).collect();
        assert_eq!(names, ["apt-get", "apt-get", "wget", "tar"]);
        assert_eq!(
            s.commands[1].words,
            ["apt-get", "install", "-y", "a b", "c"]
        );
        assert_eq!(s.commands[3].redirects, ["/tmp/out"]);
        assert!(s.has_pipe);
        assert!(!parse("a || b && c").has_pipe);
        assert!(parse("set -o pipefail; a | b").has_pipe);
        assert!(!parse("echo 'a | b' \"c|d\"").has_pipe);
        let s = parse("arch=\"$(dpkg --print-architecture | awk '{ print $NF }')\"");
        assert!(s.has_pipe);
        assert_eq!(s.commands[0].name(), "dpkg");
        let c = &parse("bash -eo pipefail --rcfile=x -c").commands[0];
        assert_eq!(c.flags(), ["e", "o", "rcfile", "c"]);
        assert!(c.has_flag("o"));
        assert_eq!(c.operands().collect::<Vec<_>>(), ["pipefail"]);
        let c = &parse("if true; then rm -rf /x; fi").commands;
        assert_eq!(c[1].words, ["rm", "-rf", "/x"]);
    }
}
