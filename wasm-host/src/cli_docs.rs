//! docs/cli.md against clap's definitions: every option a subcommand
//! defines has a row in one of the page's option tables naming that
//! subcommand in its `in` column, and every row names options that exist.

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory;

use crate::Cli;

/// For each subcommand, the options docs/cli.md lists for it: the
/// backquoted `--name`/`-x` at the start of each word of a row's first
/// cell, in every table whose header has an `in` column.
fn documented(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut in_column = None;
    for line in page.lines() {
        let Some(row) = line.trim().strip_prefix('|') else {
            in_column = None;
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells[0] == "option" {
            in_column = cells.iter().position(|cell| *cell == "in");
            continue;
        }
        let Some(column) = in_column else { continue };
        let options: Vec<String> = cells[0]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|code| code.split_whitespace().next())
            .filter(|word| word.starts_with('-'))
            .map(str::to_owned)
            .collect();
        let applies_to = cells.get(column).copied().unwrap_or_default();
        for subcommand in applies_to
            .split(|c: char| !c.is_alphanumeric())
            .filter(|s| !s.is_empty())
        {
            listed
                .entry(subcommand.to_owned())
                .or_default()
                .extend(options.iter().cloned());
        }
    }
    listed
}

/// Each option of `command` by its names (`--long`, `-s`, visible aliases).
fn defined(command: &clap::Command) -> Vec<BTreeSet<String>> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_positional() && !arg.is_hide_set())
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .map(|arg| {
            let longs = arg
                .get_long()
                .into_iter()
                .chain(arg.get_visible_aliases().into_iter().flatten());
            longs
                .map(|long| format!("--{long}"))
                .chain(arg.get_short().map(|short| format!("-{short}")))
                .collect()
        })
        .collect()
}

/// What is wrong between `page` and `command`'s subcommands, one line each.
fn mismatches(page: &str, command: &mut clap::Command) -> Vec<String> {
    command.build();
    let listed = documented(page);
    let mut problems = Vec::new();
    let subcommands: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
    for name in listed.keys() {
        if !subcommands.contains(&name.as_str()) {
            problems.push(format!("a table lists options for `{name}`, which is no subcommand"));
        }
    }
    for subcommand in command.get_subcommands() {
        let name = subcommand.get_name();
        let in_doc = listed.get(name).cloned().unwrap_or_default();
        let options = defined(subcommand);
        for names in &options {
            if names.is_disjoint(&in_doc) {
                problems.push(format!(
                    "{name}: {} is not in docs/cli.md",
                    names.iter().next().unwrap()
                ));
            }
        }
        for option in &in_doc {
            if !options.iter().any(|names| names.contains(option)) {
                problems.push(format!(
                    "{name}: docs/cli.md lists {option}, which clap does not define"
                ));
            }
        }
    }
    problems
}

#[test]
fn docs_cli_md_lists_exactly_the_options_clap_defines() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md")).unwrap();
    assert_eq!(mismatches(&page, &mut Cli::command()), Vec::<String>::new());
}

#[test]
fn a_missing_row_and_a_row_of_no_option_are_both_found() {
    let mut command = clap::Command::new("x").subcommand(
        clap::Command::new("run")
            .arg(clap::Arg::new("fuel").long("fuel"))
            .arg(clap::Arg::new("wasm").short('W'))
            .arg(clap::Arg::new("module")),
    );
    let page =
        "| option | in | what |\n| --- | --- | --- |\n| `--fuel N` | run | fuel |\n| `-W K`, `--gone` | run | x |\n";
    assert_eq!(
        mismatches(page, &mut command.clone()),
        ["run: docs/cli.md lists --gone, which clap does not define"]
    );
    let page = page.replace("| `--fuel N` | run | fuel |\n", "");
    let problems = mismatches(&page, &mut command);
    assert!(
        problems.contains(&"run: --fuel is not in docs/cli.md".to_owned()),
        "{problems:?}"
    );
}
