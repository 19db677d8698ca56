//! Prints its configuration, read from the environment:
//! `APP_MODE` (default `production`) and `LOG_LEVEL` (default `info`).

const DEFAULT_MODE: &str = "production";
const DEFAULT_LOG_LEVEL: &str = "info";

fn main() {
    let mode = std::env::var("APP_MODE").unwrap_or_else(|_| DEFAULT_MODE.to_owned());
    let log_level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| DEFAULT_LOG_LEVEL.to_owned());
    println!("mode={mode}");
    println!("log_level={log_level}");
}
