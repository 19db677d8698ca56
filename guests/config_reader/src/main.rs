//! Prints its configuration, read from the environment:
//! `APP_MODE` (default `production`) and `LOG_LEVEL` (default `info`).

const DEFAULT_MODE: &str = "production";
const DEFAULT_LOG_LEVEL: &str = "info";

fn main() {
    let mode = std::env::var("APP_MODE").ok();
    let log_level = std::env::var("LOG_LEVEL").ok();
    print!("{}", describe(mode.as_deref(), log_level.as_deref()));
}

/// The configuration as printed, each setting its default when not given.
fn describe(mode: Option<&str>, log_level: Option<&str>) -> String {
    let mode = mode.unwrap_or(DEFAULT_MODE);
    let log_level = log_level.unwrap_or(DEFAULT_LOG_LEVEL);
    format!("mode={mode}\nlog_level={log_level}\n")
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn settings_not_given_take_their_defaults() {
        assert_eq!(describe(None, None), "mode=production\nlog_level=info\n");
    }

    #[test]
    fn settings_given_are_printed_as_given() {
        assert_eq!(describe(Some("test"), Some("debug")), "mode=test\nlog_level=debug\n");
        assert_eq!(describe(Some(""), None), "mode=\nlog_level=info\n");
    }
}
