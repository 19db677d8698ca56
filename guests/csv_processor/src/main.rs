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

#[cfg(test)]
mod tests {
    use super::sum_fields;

    #[test]
    fn every_field_of_every_line_is_summed() {
        assert_eq!(sum_fields("1,2,3\n4.5, -0.5\n"), Ok(10.0));
    }

    #[test]
    fn blank_lines_are_skipped_and_no_input_sums_to_zero() {
        assert_eq!(sum_fields("\n1\n  \n2\n"), Ok(3.0));
        assert_eq!(sum_fields(""), Ok(0.0));
    }

    #[test]
    fn a_field_that_is_not_a_number_is_named_by_line_and_field() {
        assert_eq!(
            sum_fields("1,2\n3,x,4\n"),
            Err(r#"line 2, field 2: "x" is not a number"#.to_owned())
        );
    }

    #[test]
    fn infinities_and_nan_are_not_numbers() {
        for field in ["inf", "NaN", "1e999"] {
            assert!(sum_fields(field).is_err(), "{field}");
        }
    }
}
