//! The digits CSV: no header, one sample per line, 64 integers in `0..=16` (the pixels,
//! row-major) then the label in `0..=9`. Blank lines (a trailing newline) are skipped; any other
//! malformed line is a [`DataError::Row`] naming the line and what is wrong with it.

use super::{CLASSES, DataError, Dataset, FEATURES, MAX_PIXEL, RowError};

/// Parses the CSV text into features (`pixel / 16` as f32) and labels.
pub fn parse(text: &str) -> Result<Dataset, DataError> {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row_error = |detail| DataError::Row {
            line: index + 1,
            detail,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != FEATURES + 1 {
            return Err(row_error(RowError::FieldCount {
                expected: FEATURES + 1,
                got: fields.len(),
            }));
        }
        for (column, field) in fields[..FEATURES].iter().enumerate() {
            let pixel = parse_int(field, column + 1, MAX_PIXEL.into()).map_err(row_error)?;
            features.push(pixel as f32 / f32::from(MAX_PIXEL));
        }
        let label =
            parse_int(fields[FEATURES], FEATURES + 1, CLASSES as i64 - 1).map_err(row_error)?;
        labels.push(label as i32);
    }
    Ok(Dataset::new(features, labels))
}

/// Field `column` (1-based) as an integer in `0..=max`.
fn parse_int(field: &str, column: usize, max: i64) -> Result<i64, RowError> {
    let value: i64 = field.parse().map_err(|_| RowError::NotAnInteger {
        column,
        text: field.to_string(),
    })?;
    if !(0..=max).contains(&value) {
        return Err(RowError::OutOfRange { column, value, max });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pixel: &str, label: &str) -> String {
        let mut fields = vec!["0"; FEATURES];
        fields[3] = pixel;
        format!("{},{label}", fields.join(","))
    }

    #[test]
    fn parses_rows_and_scales_pixels() {
        let text = format!("{}\n{}\n\n", row("16", "3"), row("8", "9"));
        let data = parse(&text).unwrap();
        assert_eq!(data.labels(), [3, 9]);
        assert_eq!(data.row(0)[3], 1.0);
        assert_eq!(data.row(1)[3], 0.5);
    }

    #[test]
    fn malformed_rows_name_line_and_field() {
        let cases = [
            (
                format!("{}\n0,1", row("1", "1")),
                "line 2: expected 65 comma-separated fields, but got 2",
            ),
            (row("x", "1"), "line 1: field 4 is not an integer: \"x\""),
            (row("17", "1"), "line 1: field 4 is 17, outside 0..=16"),
            (row("1", "10"), "line 1: field 65 is 10, outside 0..=9"),
        ];
        for (text, message) in cases {
            let error = parse(&text).unwrap_err().to_string();
            assert_eq!(error, format!("digits data, {message}"));
        }
    }
}
