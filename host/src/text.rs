//! Text from a guest, a module or a suite made safe to print on one line
//! of a terminal: the CLI's messages and the conformance runner's reports
//! both use it.

/// `text` with every control character written as an escape (`\u{1b}`), so
/// that names from a module or a suite, and a guest's output, cannot move
/// the cursor or change the colours of the terminal they are printed to.
pub fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// Folds a multi-line compiler message into one line, dropping the source
/// excerpt a WAT parse error carries under its `--> file:line:col` line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with('|'))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `error`'s message and those of its causes, `: ` between them: each
/// level of a `host::Error` says only what failed there.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wat_parse_error_keeps_its_message_and_location_only() {
        let message = "expected `(`\n     --> <anon>:1:1\n      |\n    1 | hello\n      | ^";
        assert_eq!(one_line(message), "expected `(` --> <anon>:1:1");
        assert_eq!(one_line("already one line"), "already one line");
    }

    #[test]
    fn control_characters_are_written_as_escapes() {
        assert_eq!(escape_controls("a\u{1b}[2Jb\u{9b}"), r"a\u{1b}[2Jb\u{9b}");
    }
}
