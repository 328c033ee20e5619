//! `upkeep man`: the man page, generated from the clap definitions so it lists every
//! option of every command (clap_mangen renders only the top level; the COMMANDS section
//! below is written here), plus the data-directory rule and the files upkeep uses.

use crate::cli::Cli;
use clap::CommandFactory;
use std::io::Write;

/// Escapes text for a roff line (`\`, `-`, and a leading `.` or `'`).
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// `--listen <LISTEN>`, `[FILE]`, … as they appear in `--help`.
fn arg_label(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values())
        || !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count
        );
    match (arg.get_short(), arg.get_long()) {
        (_, Some(long)) if takes_value => format!("--{long} <{value}>"),
        (_, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => format!("<{value}>"),
    }
}

fn write_args(out: &mut String, command: &clap::Command) {
    for arg in command.get_arguments() {
        if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        out.push_str(".TP\n");
        out.push_str(&format!("\\fB{}\\fR\n", roff(&arg_label(arg))));
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        let mut extra = Vec::new();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && !matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            extra.push(format!("default: {}", defaults.join(",")));
        }
        if let Some(env) = arg.get_env() {
            extra.push(format!("env: {}", env.to_string_lossy()));
        }
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !possible.is_empty() && possible.len() < 10 {
            extra.push(format!("one of: {}", possible.join(", ")));
        }
        let mut text = help.replace('\n', " ");
        if !extra.is_empty() {
            text.push_str(&format!(" [{}]", extra.join("; ")));
        }
        out.push_str(&roff(text.trim()));
        out.push('\n');
    }
}

fn write_commands(out: &mut String, command: &clap::Command, path: &str) {
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let full = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() {
            write_commands(out, sub, &full);
            continue;
        }
        out.push_str(&format!(".SS \"{}\"\n", roff(&full)));
        let about = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(ToString::to_string)
            .unwrap_or_default();
        for paragraph in about.split("\n\n") {
            out.push_str(&roff(&paragraph.replace('\n', " ")));
            out.push_str("\n.PP\n");
        }
        write_args(out, sub);
    }
}

/// Renders the whole page (roff) into `out`.
///
/// # Errors
/// Writing to `out` failed.
pub fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let man = clap_mangen::Man::new(command.clone());
    let mut head = Vec::new();
    man.render_title(&mut head)?;
    man.render_name_section(&mut head)?;
    man.render_synopsis_section(&mut head)?;
    man.render_description_section(&mut head)?;
    man.render_options_section(&mut head)?;
    // Each clap_mangen section repeats the same two-line preamble; keep the first.
    let head = String::from_utf8_lossy(&head);
    let mut seen = std::collections::HashSet::new();
    let mut text = String::new();
    for line in head.lines() {
        if (line.starts_with(".ie ") || line.starts_with(".el ")) && !seen.insert(line) {
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(".SH COMMANDS\n");
    text.push_str(&roff(
        "Each command accepts only its own options; those below are all of them. \
         Every option also reads the UPKEEP_* environment variable shown.",
    ));
    text.push('\n');
    write_commands(&mut text, &command, "upkeep");
    text.push_str(".SH FILES\n.TP\n\\fB./upkeep\\-data\\fR, \\fB/var/lib/upkeep\\fR\n");
    text.push_str(&roff(
        "The data directory: --data or UPKEEP_DATA, else ./upkeep-data, else /var/lib/upkeep \
         when ./upkeep-data does not exist and /var/lib/upkeep does (the packaged install). \
         Only `upkeep serve` and `upkeep init` create it. It holds db/ (the store), \
         server.key (keep a copy: backups do not include it), index.snapshot and, while \
         the server runs, admin.sock.",
    ));
    text.push_str("\n.TP\n\\fB/etc/default/upkeep\\fR\n");
    text.push_str(&roff(
        "The packaged service's settings (UPKEEP_* variables), read by systemd at each \
         start of upkeep.service; not read by commands run by hand.",
    ));
    text.push('\n');
    out.write_all(text.as_bytes())?;
    man.render_version_section(&mut TrimPreamble(out))
}

/// Drops the preamble clap_mangen puts before the version section.
struct TrimPreamble<'a>(&'a mut dyn Write);

impl Write for TrimPreamble<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let kept: String = text
            .split_inclusive('\n')
            .filter(|line| !line.starts_with(".ie ") && !line.starts_with(".el "))
            .collect();
        self.0.write_all(kept.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
