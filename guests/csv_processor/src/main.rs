//! Reads CSV from stdin and prints the sum of every field.
//!
//! Blank lines are skipped. A field that is not a finite number stops the
//! program with a message on stderr naming the line and field, and exit code 1.

use std::io::{self, Read};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(error) = io::stdin().read_to_string(&mut input) {
        eprintln!("error: cannot read stdin: {error}");
        return ExitCode::FAILURE;
    }
    match sum_fields(&input) {
        Ok(sum) => {
            println!("{sum}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn sum_fields(csv: &str) -> Result<f64, String> {
    let mut sum = 0.0;
    for (line_index, line) in csv.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        for (field_index, field) in line.split(',').enumerate() {
            let value = field.trim();
            match value.parse::<f64>() {
                Ok(number) if number.is_finite() => sum += number,
                _ => {
                    return Err(format!(
                        "line {}, field {}: {value:?} is not a number",
                        line_index + 1,
                        field_index + 1
                    ));
                }
            }
        }
    }
    Ok(sum)
}
