//! Man pages (clap_mangen) and shell completions (clap_complete), generated
//! from the clap definitions in [`crate::cli`] so that they cannot drift from
//! the real options: `quire man --dir man` writes the pages checked in under
//! `man/`, and a test fails when they differ from what the code generates.
//! The top page adds FILES, ENVIRONMENT (every `QUIRE_*` variable, described
//! from config.example.toml), EXIT STATUS, EXAMPLES and SEE ALSO.

use std::io::Write;
use std::path::Path;

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// The man pages: `quire.1`, then one `quire-<sub>.1` per visible subcommand
/// (hidden ones, like `man`, are skipped), as (file name, roff source).
pub fn render_man_pages(cmd: Command) -> Vec<(String, Vec<u8>)> {
    // Build the whole tree once, as clap_mangen::generate_to does: that gives
    // each subcommand display_name "quire-serve" (used by Man for the .TH title,
    // the NAME line and the file name) and bin_name "quire serve" (used by the
    // SYNOPSIS), and copies the global args (--data-dir, --config, -v, -q) into
    // every subcommand. Do NOT rename subcommands with `.name("quire-serve")`:
    // the synopsis would then read "quire-serve [OPTIONS]", a command that does
    // not exist.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();

    let mut pages = vec![(format!("{}.1", cmd.get_name()), render_top_page(&cmd))];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = new_man(&cmd, sub);
        let mut extra = Roff::new();
        command_sections(&mut extra, sub.get_name());
        see_also(&mut extra, &cmd, Some(sub.get_name()));
        pages.push((man.get_filename(), render_page(&man, sub, &extra)));
    }
    pages
}

/// Writes the pages into `dir` (created if missing), for `quire man --dir DIR`.
pub fn write_man_pages(cmd: Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in render_man_pages(cmd) {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

/// Prints the completion script for `shell`, for `quire completions SHELL`.
/// Pass the unbuilt `Cli::command()`.
pub fn write_completions(shell: clap_complete::Shell, cmd: &Command, out: &mut dyn Write) {
    let mut cmd = without_hidden_subcommands(cmd);
    // The bin name is what the script registers completions for.
    clap_complete::generate(shell, &mut cmd, "quire", out);
}

/// clap_complete (4.6.11) completes hidden subcommands too (by choice, see clap
/// issues #1335 and #2541; checked here in bash, zsh and fish output), so `quire <TAB>` would offer `man`. clap has no
/// `remove_subcommand`: re-assemble the root from its own arguments and its
/// visible subcommands. Only settings that completions never show are lost.
/// `cmd` must be unbuilt (`Cli::command()`), or its auto-generated --help and
/// --version would be copied in as well.
fn without_hidden_subcommands(cmd: &Command) -> Command {
    let mut root = Command::new("quire")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    // (-h says "see more with '--help'" only when there is a long about)
    if let Some(about) = cmd.get_about() {
        root = root.about(about.clone());
    }
    if let Some(long) = cmd.get_long_about() {
        root = root.long_about(long.clone());
    }
    root
}

/// A `Man` for `cmd` (the root or a built subcommand of `root`), titled in
/// capitals as man pages are, and with "quire 0.1.0" as its source for
/// subcommands too (Man::new would write "serve 0.1.0").
fn new_man(root: &Command, cmd: &Command) -> Man {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    Man::new(cmd.clone())
        .title(name.to_uppercase())
        .source(format!(
            "{} {}",
            root.get_name(),
            root.get_version().unwrap_or_default()
        ))
}

/// SYNOPSIS, written here rather than by clap_mangen, whose synopsis leaves
/// out the values options take (`[--limit]` for `--limit N`): each option
/// with its value, positionals as `<NAME>`, `...` where they repeat.
fn synopsis(cmd: &Command) -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["SYNOPSIS"]);
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let mut line = vec![bold(name)];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let values: Vec<String> = arg
            .get_value_names()
            .map(|v| v.iter().map(|n| format!("<{n}>")).collect())
            .unwrap_or_else(|| vec![format!("<{}>", arg.get_id().as_str().to_uppercase())]);
        let repeats = arg.get_num_args().is_some_and(|n| n.max_values() > 1)
            || matches!(
                arg.get_action(),
                clap::ArgAction::Append | clap::ArgAction::Count
            );
        let optional = !arg.is_required_set();
        line.push(roman(if optional { " [" } else { " " }));
        if arg.is_positional() {
            line.push(italic(values.join(" ")));
        } else {
            let flag = match (arg.get_short(), arg.get_long()) {
                (Some(s), Some(l)) => format!("-{s}|--{l}"),
                (Some(s), None) => format!("-{s}"),
                (None, Some(l)) => format!("--{l}"),
                (None, None) => continue,
            };
            line.push(bold(flag));
            if arg.get_action().takes_values() {
                line.push(roman(" "));
                line.push(italic(values.join(" ")));
            }
        }
        if optional {
            line.push(roman("]"));
        }
        if repeats {
            line.push(roman("..."));
        }
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        let name = cmd.get_subcommand_value_name().unwrap_or("COMMAND");
        line.push(roman(" "));
        line.push(italic(format!("<{name}>")));
    }
    r.text(line);
    r
}

/// What `Man::render` writes, with `extra` inserted before VERSION and AUTHORS.
fn render_page(man: &Man, cmd: &Command, extra: &Roff) -> Vec<u8> {
    let mut buf = Vec::new();
    let w: &mut dyn Write = &mut buf;
    (|| -> std::io::Result<()> {
        man.render_title(w)?;
        man.render_name_section(w)?;
        synopsis(cmd).to_writer(w)?;
        man.render_description_section(w)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(w)?;
        }
        if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
            man.render_subcommands_section(w)?;
        }
        if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
            man.render_extra_section(w)?;
        }
        extra.to_writer(w)?;
        if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
            man.render_version_section(w)?;
        }
        if cmd.get_author().is_some() {
            man.render_authors_section(w)?;
        }
        Ok(())
    })()
    .expect("writing to a Vec cannot fail");
    dedupe_preamble(buf)
}

/// quire.1: the standard sections, then FILES, ENVIRONMENT, EXIT STATUS,
/// EXAMPLES and SEE ALSO, then VERSION.
fn render_top_page(cmd: &Command) -> Vec<u8> {
    let mut cmd = cmd
        .clone()
        .subcommand_help_heading("COMMANDS")
        .subcommand_value_name("COMMAND");
    // The derive's `about` is the doc comment's first line, "quire: a hot-folder
    // ...", which would make NAME read "quire - quire: a ...": drop the prefix.
    let prefix = format!("{}: ", cmd.get_name());
    if let Some(about) = cmd.get_about().map(|a| a.to_string())
        && let Some(rest) = about.strip_prefix(&prefix)
    {
        let rest = rest.trim_end_matches('.').to_string();
        cmd = cmd.about(rest);
    }
    let man = new_man(&cmd, &cmd);
    let mut extra = Roff::new();
    files_section(&mut extra);
    environment_section(&mut extra);
    exit_status_section(&mut extra);
    examples_section(&mut extra);
    see_also(&mut extra, &cmd, None);
    render_page(&man, &cmd, &extra)
}

fn files_section(r: &mut Roff) {
    r.control("SH", ["FILES"]);
    let entry = |r: &mut Roff, path: &str, text: &str| {
        r.control("TP", []);
        r.text([bold(path)]);
        r.text([roman(text)]);
    };
    entry(
        r,
        "~/.config/quire/config.toml",
        "The configuration file of a user (or $XDG_CONFIG_HOME/quire/config.toml). The first of --config, $QUIRE_CONFIG, this file and /etc/quire/config.toml that exists is read; none is needed.",
    );
    entry(
        r,
        "/etc/quire/config.toml",
        "The system-wide configuration file, read by the systemd service.",
    );
    entry(
        r,
        "DATA_DIR",
        "The data directory: --data-dir, $QUIRE_DATA_DIR or data_dir in the config; by default $STATE_DIRECTORY under systemd (/var/lib/quire), else $XDG_DATA_HOME/quire, else ~/.local/share/quire.",
    );
    entry(
        r,
        "DATA_DIR/quire.db",
        "The SQLite database (WAL mode, with quire.db-wal and quire.db-shm beside it): documents, pages, the full-text index and the task queue.",
    );
    entry(
        r,
        "DATA_DIR/inbox/",
        "The watched folder (unless inbox is set in the config). Files dropped here are taken into the store.",
    );
    entry(
        r,
        "DATA_DIR/originals/",
        "The stored documents, moved here from the inbox.",
    );
    entry(
        r,
        "DATA_DIR/duplicates/",
        "Files whose content is already stored.",
    );
    entry(
        r,
        "DATA_DIR/inbox.lock",
        "Held by the quire serve that watches the inbox; others run workers only.",
    );
    entry(
        r,
        "/usr/share/doc/quire/config.example.toml",
        "Every configuration key with its default (under the installation prefix, e.g. /usr/local).",
    );
}

/// QUIRE_* for every config key (from the config itself, so the list cannot
/// go stale), then the other variables quire or its libraries read.
fn environment_section(r: &mut Roff) {
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman(
        "Every configuration key can be set by environment: a top-level key k as QUIRE_K, a key k of section s as QUIRE_S_K. Values are read as TOML values (numbers, true/false, [\"eng\", \"deu\"]); durations and other strings are taken as they are. The environment overrides the config file; command-line flags override both.",
    )]);
    for (var, key) in crate::config::Config::env_vars() {
        r.control("TP", []);
        r.text([bold(var.as_str())]);
        let text = match key_help(&key) {
            // A key whose default depends on the machine says so itself.
            Some((_, help)) if help.contains("Default:") => format!("{key}: {help}"),
            Some((default, help)) => format!("{key} (default {default}): {help}"),
            None => "The configuration file, as --config.".to_string(),
        };
        r.text([roman(text)]);
    }
    let other = [
        (
            "RUST_LOG",
            "Log filter for env_logger (e.g. debug, quire=trace); overrides -v and -q.",
        ),
        (
            "XDG_CONFIG_HOME, XDG_DATA_HOME, HOME",
            "Where the user's config file and the default data directory are looked for.",
        ),
        (
            "STATE_DIRECTORY",
            "Set by systemd (StateDirectory=quire); the default data directory. If it holds several paths separated by colons, the first is used.",
        ),
        (
            "NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID",
            "Set by systemd for Type=notify: quire serve reports READY, STATUS lines, STOPPING and watchdog pings.",
        ),
        (
            "JOURNAL_STREAM",
            "Set by systemd when stderr goes to the journal: log lines then carry journal priorities and no timestamps.",
        ),
        (
            "OMP_THREAD_LIMIT",
            "OpenMP threads per tesseract engine. Unless set, quire runs tesseract with 1: OpenMP threads make it slower, and workers give the parallelism.",
        ),
        (
            "TESSDATA_PREFIX",
            "Where tesseract looks for its language data (read by tesseract itself).",
        ),
    ];
    for (var, text) in other {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman(text)]);
    }
}

/// `(default, help)` for config key `key` ("section.key" or "key"): the value
/// and the comment above it in config.example.toml, the one place keys are
/// documented (and tested equal to the defaults), so the man page cannot drift.
fn key_help(key: &str) -> Option<(String, String)> {
    let (want_section, want_key) = key.split_once('.').unwrap_or(("", key));
    let mut section = "";
    // Keys listed together share the comment block above the first of them.
    let mut comment: Vec<&str> = vec![];
    let mut after_key = false;
    for line in crate::config::EXAMPLE.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix('#') {
            if after_key {
                comment.clear();
                after_key = false;
            }
            comment.push(c.trim());
        } else if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']');
            comment.clear();
        } else if let Some((k, v)) = line.split_once('=') {
            if section == want_section && k.trim() == want_key {
                return Some((v.trim().to_string(), comment.join(" ")));
            }
            after_key = true;
        } else {
            comment.clear();
        }
    }
    None
}

/// Sections of one subcommand's page beyond its options: the query syntax
/// of `search`, and EXIT STATUS where a command's differs from quire(1)'s.
fn command_sections(r: &mut Roff, name: &str) {
    let codes: &[(&str, &str)] = match name {
        "search" => {
            query_syntax_section(r);
            &[
                ("0", "Something matched."),
                (
                    "1",
                    "Nothing matched (as grep(1) does), or a runtime failure.",
                ),
                (
                    "2",
                    "A usage error: a bad date or status, a raw query the index cannot run, \
                     or a query with nothing to look for.",
                ),
            ]
        }
        "text" => &[
            ("0", "The text was printed."),
            (
                "1",
                "The document has no text: it failed (the reason is printed) or is not read yet.",
            ),
            ("2", "A usage error."),
        ],
        _ => return,
    };
    r.control("SH", ["EXIT STATUS"]);
    for (code, text) in codes {
        r.control("TP", []);
        r.text([bold(*code)]);
        r.text([roman(*text)]);
    }
}

/// `quire search`'s QUERY SYNTAX, with examples.
fn query_syntax_section(r: &mut Roff) {
    r.control("SH", ["QUERY SYNTAX"]);
    r.text([roman(
        "Every word must appear on the same page; case and accents do not matter. \
         Results come one per document, its best page first, with its other matching pages \
         (--pages lists every page).",
    )]);
    for (form, meaning) in [
        ("word1 word2", "pages with both words"),
        ("\"a phrase\"", "the words together, in this order"),
        ("pay*", "any word that starts with pay"),
        (
            "a OR b",
            "either; OR joins the two terms beside it, so tax 2023 OR 2024 is tax and one of the years",
        ),
        (
            "-word, NOT word, -\"a phrase\"",
            "leave out pages that have it",
        ),
        ("AND", "may be written; changes nothing"),
    ] {
        r.control("TP", []);
        r.text([bold(form)]);
        r.text([roman(meaning)]);
    }
    r.control("PP", []);
    r.text([roman(
        "Anything else (hyphens inside words, colons, stray quotes, OR, AND or NOT with nothing \
         to act on) is searched as words. --raw passes the query to SQLite FTS5 unchanged.",
    )]);
    r.control("SS", ["Examples"]);
    for (what, command) in [
        ("Invoices that mention 4711:", "quire search invoice 4711"),
        ("Either spelling:", "quire search colour OR color"),
        ("Contracts, but not drafts:", "quire search contract -draft"),
        (
            "A phrase, from 2024 on, as JSON:",
            "quire search '\"terms of payment\"' --since 2024-01-01 --json",
        ),
        (
            "Every page, not just the best of each document:",
            "quire search invoice --pages --limit 100",
        ),
    ] {
        r.control("PP", []);
        r.text([roman(what)]);
        r.control("RS", ["4"]);
        r.control("nf", []);
        r.text([roman(command)]);
        r.control("fi", []);
        r.control("RE", []);
    }
}

fn exit_status_section(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    for (code, text) in [
        (
            "0",
            "Success (for serve: stopped cleanly by SIGTERM or SIGINT).",
        ),
        (
            "1",
            "A runtime failure: bad configuration, an unreadable database, a failed command.",
        ),
        ("2", "A usage error: unknown option, missing argument."),
    ] {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(text)]);
    }
}

fn examples_section(r: &mut Roff) {
    r.control("SH", ["EXAMPLES"]);
    let example = |r: &mut Roff, text: &str, command: &str| {
        r.control("PP", []);
        r.text([roman(text)]);
        r.control("PP", []);
        r.control("RS", ["4"]);
        r.control("nf", []);
        r.text([roman(command)]);
        r.control("fi", []);
        r.control("RE", []);
    };
    example(
        r,
        "Run the daemon, then drop a scan into its inbox:",
        "quire serve &\ncp scan.pdf ~/.local/share/quire/inbox/",
    );
    example(
        r,
        "Search, and print the text of a hit:",
        "quire search invoice 4711\nquire text 1 --page 2",
    );
    example(
        r,
        "Add a folder of files without a daemon, and process one now:",
        "quire enqueue ~/scans --priority low\nquire process ~/scans/contract.pdf",
    );
    example(
        r,
        "Use the data of the systemd service:",
        "sudo -u quire quire --data-dir /var/lib/quire stats",
    );
    example(
        r,
        "Set a config key from the environment:",
        "QUIRE_OCR_LANGUAGES='[\"eng\", \"deu\"]' quire serve",
    );
}

/// SEE ALSO: the other pages of quire, and the programs it uses.
fn see_also(r: &mut Roff, root: &Command, this: Option<&str>) {
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = Vec::new();
    if this.is_some() {
        refs.push(format!("{}(1)", root.get_name()));
    }
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        if this.is_some_and(|t| t == sub.get_name()) {
            continue;
        }
        refs.push(format!("{}-{}(1)", root.get_name(), sub.get_name()));
    }
    refs.extend(["tesseract(1)", "pdftoppm(1)", "systemd.exec(5)"].map(String::from));
    let mut line = Vec::new();
    for (i, name) in refs.iter().enumerate() {
        let (page, section) = name.split_once('(').unwrap_or((name, ""));
        line.push(bold(page));
        line.push(roman(format!(
            "({section}{}",
            if i + 1 < refs.len() { ", " } else { "" }
        )));
    }
    r.text(line);
}

/// Every `Roff::to_writer` call (so every `Man::render_*` call) starts with the
/// same two-line apostrophe preamble (`.ie \n(.g .ds Aq \(aq` / `.el .ds Aq '`).
/// Repeating it is harmless, but keep only the first: the preamble is whatever
/// precedes the first `.TH`.
fn dedupe_preamble(buf: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(buf).expect("roff output is UTF-8");
    let Some(th) = text.find(".TH ") else {
        return text.into_bytes();
    };
    let (preamble, body) = text.split_at(th);
    if preamble.is_empty() {
        return text.into_bytes();
    }
    format!("{preamble}{}", body.replace(preamble, "")).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_key_has_help_from_the_example_config() {
        for (var, key) in crate::config::Config::env_vars() {
            if var != "QUIRE_CONFIG" {
                let (default, help) = key_help(&key).unwrap_or_else(|| panic!("{key}"));
                assert!(!help.is_empty() && !default.is_empty(), "{key}");
            }
        }
        assert_eq!(
            key_help("ocr.page_timeout").unwrap().0,
            "\"3m\"",
            "the default is the example's value"
        );
    }

    #[test]
    fn pages_are_deterministic_and_named_per_subcommand() {
        use clap::CommandFactory;
        let a = render_man_pages(crate::cli::Cli::command());
        let b = render_man_pages(crate::cli::Cli::command());
        assert_eq!(a, b);
        let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"quire.1") && names.contains(&"quire-serve.1"),
            "{names:?}"
        );
        let serve = String::from_utf8(
            a.iter()
                .find(|(n, _)| n == "quire-serve.1")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(
            serve.contains("\\fBquire serve\\fR"),
            "synopsis names `quire serve`"
        );
    }

    #[test]
    fn completions_leave_out_hidden_subcommands() {
        use clap::CommandFactory;
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            write_completions(shell, &crate::cli::Cli::command(), &mut out);
            let script = String::from_utf8(out).unwrap();
            assert!(script.contains("serve"), "{shell}");
            assert!(
                !script.contains("subcmd__man")
                    && !script.contains("-a \"man\"")
                    && !script.contains("(man)"),
                "{shell}"
            );
        }
    }
}
